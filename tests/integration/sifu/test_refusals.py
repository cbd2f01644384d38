"""What Sifu and Jupyter must refuse, checked against the real processes."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
import websocket

from sifu import signing
from sifu.db import hash_token
from tests.integration.sifu.helpers import COURSE, prepare_copy, serve_url, user_call
from tests.support.jupyter_client import JupyterSession, execute
from tests.support.sifu_stack import start_sifu

pytestmark = pytest.mark.integration
FILE = "refusals.ipynb"


@pytest.fixture(scope="module")
def copies(sifu_stack):
    """alice and bob each have a copy of the same notebook; bob has a running kernel."""
    tokens = {name: sifu_stack.token(name) for name in ("alice", "bob")}
    for name, token in tokens.items():
        prepare_copy(sifu_stack.sifu.url, token, name, COURSE, FILE)
    bob = JupyterSession(sifu_stack.jupyter.url, sifu_stack.identity_cookie("bob"))
    bob.prime_xsrf(f"/notebooks/users/bob/{quote(COURSE)}/{FILE}")
    session = bob.start_session(f"users/bob/{COURSE}/{FILE}")
    assert session.status_code == 201, session.text
    yield {"tokens": tokens, "bob_session": session.json(), "bob": bob}
    bob.request("DELETE", f"/api/sessions/{session.json()['id']}")
    bob.close()


def refused_page(reply: httpx.Response) -> bool:
    """Pages for another user's file are treated as signed out: a redirect to the (closed) login, or 403."""
    return reply.status_code == 403 or (reply.status_code == 302 and reply.headers["location"].startswith("/login"))


def _token_request(stack, username, code, grant_type="edx_auth_code"):
    return httpx.post(f"{stack.sifu.url}/token", headers={"Authorization": "Bearer None"}, timeout=20, json={
        "username": username, "auth_code": code, "grant_type": grant_type, "path": "create"})


# --- sign-in --------------------------------------------------------------------------------------------


def test_username_that_does_not_match_the_edx_identity_is_refused(sifu_stack):
    reply = _token_request(sifu_stack, "bob", sifu_stack.devlms.auth_code("alice"))
    assert reply.status_code == 403 and reply.json()["error"] == "username_mismatch"


def test_a_used_or_made_up_code_is_a_4xx_with_a_json_reason(sifu_stack):
    code = sifu_stack.devlms.auth_code("alice")
    assert _token_request(sifu_stack, "alice", code).status_code == 200
    again = _token_request(sifu_stack, "alice", code)
    assert again.status_code == 401 and again.json()["error"] == "edx_code_rejected"
    assert _token_request(sifu_stack, "alice", "made-up").status_code == 401
    assert _token_request(sifu_stack, "alice", "x", grant_type="password").status_code == 400


def test_unreachable_edx_is_a_502_not_a_500(sifu_stack, tmp_path):
    env = dict(sifu_stack.sifu.env, EDX_HOSTNAME="127.0.0.1:9", SIFU_STATE_DIR=str(tmp_path))
    env.pop("SIFU_DATABASE_URL", None)
    other = start_sifu(tmp_path, env, name="sifu-no-edx")
    try:
        reply = httpx.post(f"{other.url}/token", timeout=20, json={
            "username": "alice", "auth_code": "c", "grant_type": "edx_auth_code", "path": "create"})
        assert reply.status_code == 502 and reply.json()["error"] == "edx_unreachable"
    finally:
        other.stop()


# --- tokens ----------------------------------------------------------------------------------------------


def test_missing_none_and_garbage_tokens_are_401(sifu_stack):
    for headers in ({}, {"Authorization": "Bearer None"}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        reply = httpx.request("GET", sifu_stack.sifu.url + "/v1/api/notebooks/courses/files/", headers=headers,
                              json={"notey_notey": {"course": COURSE, "file": FILE}})
        assert reply.status_code == 401 and reply.json()["error"] == "invalid_token"


def test_an_expired_token_is_refused(sifu_stack):
    token = sifu_stack.token("alice")
    assert user_call("GET", sifu_stack.sifu.url, token, "alice", COURSE, FILE).status_code == 200
    engine = sa.create_engine(f"sqlite:///{sifu_stack.workdir / 'state' / 'sifu.sqlite3'}")
    with engine.begin() as conn:  # time travel in the real database: the token expired a second ago
        conn.execute(sa.text("UPDATE sifu_access_tokens SET expires_at = :t WHERE token_hash = :h"),
                     {"t": int(time.time()) - 1, "h": hash_token(token)})
    engine.dispose()
    assert user_call("GET", sifu_stack.sifu.url, token, "alice", COURSE, FILE).status_code == 401
    assert httpx.get(serve_url(sifu_stack.sifu.url, "alice", COURSE, FILE, token)).status_code == 401


def test_revocation_reaches_another_sifu_instance_and_all_its_workers(sifu_stack, copies, tmp_path):
    token = sifu_stack.token("alice")
    other = start_sifu(tmp_path, sifu_stack.sifu.env, name="sifu-second", workers=2)
    try:
        for _ in range(10):  # new connections: both workers answer some of them
            assert user_call("GET", other.url, token, "alice", COURSE, FILE).json() == {"result": True}
        httpx.post(sifu_stack.sifu.url + "/revoke", json={"token_type_hint": "access_token", "token": token})
        for _ in range(10):
            assert user_call("GET", other.url, token, "alice", COURSE, FILE).status_code == 401
        assert len(set(re.findall(r"Started server process \[(\d+)\]", other.proc.log()))) == 2
    finally:
        other.stop()


# --- one student, another student's notebook ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_student_cannot_touch_another_students_copy_in_sifu(sifu_stack, copies, method):
    reply = user_call(method, sifu_stack.sifu.url, copies["tokens"]["alice"], "bob", COURSE, FILE)
    assert reply.status_code == 403 and reply.json()["error"] == "forbidden"
    assert (sifu_stack.root / "users" / "bob" / COURSE / FILE).is_file()


def test_student_cannot_open_another_students_copy(sifu_stack, copies):
    reply = httpx.get(serve_url(sifu_stack.sifu.url, "bob", COURSE, FILE, copies["tokens"]["alice"]))
    assert reply.status_code == 403 and "set-cookie" not in reply.headers


def test_serve_of_a_missing_copy_is_404(sifu_stack, copies):
    assert httpx.get(serve_url(sifu_stack.sifu.url, "alice", COURSE, "absent.ipynb", copies["tokens"]["alice"])).status_code == 404


def test_serve_answers_get_only(sifu_stack, copies):
    """HEAD and POST on the iframe URL are refused as on every GET-only route: 405, no identity cookie."""
    url = serve_url(sifu_stack.sifu.url, "alice", COURSE, FILE, copies["tokens"]["alice"])
    for method in ("HEAD", "POST"):
        reply = httpx.request(method, url)
        assert reply.status_code == 405 and "set-cookie" not in reply.headers, method
        assert reply.headers["allow"] == "GET", method


def test_student_cannot_reach_another_students_files_or_kernels_in_jupyter(sifu_stack, copies):
    alice = JupyterSession(sifu_stack.jupyter.url, sifu_stack.identity_cookie("alice"))
    try:
        assert alice.prime_xsrf(f"/notebooks/users/alice/{quote(COURSE)}/{FILE}").status_code == 200
        bob_path = f"users/bob/{COURSE}/{FILE}"
        # contents and files
        assert alice.http.get(f"/api/contents/{quote(bob_path)}").status_code == 403
        assert refused_page(alice.http.get(f"/files/{quote(bob_path)}"))
        root = alice.http.get("/api/contents/")  # Notebook 7 lists it in the background: empty, not everyone's
        assert root.status_code == 200 and root.json()["content"] == []
        assert refused_page(alice.http.get(f"/view/{quote(bob_path)}"))
        assert alice.http.get(f"/nbconvert/html/{quote(bob_path)}").status_code in (302, 403)
        assert alice.http.get(f"/api/contents/users/alice/{quote(COURSE)}/{FILE}/checkpoints").status_code == 200
        assert alice.http.get(f"/api/contents/{quote(bob_path)}/checkpoints").status_code == 403
        assert alice.http.get("/api/nbconvert").status_code == 200
        assert alice.http.get(f"/api/contents/users/{quote('..')}/bob").status_code in (403, 404)
        assert alice.request("PUT", f"/api/contents/{quote(bob_path)}", json={"type": "file", "format": "text", "content": "x"}).status_code == 403
        rename = alice.request("PATCH", f"/api/contents/users/alice/{quote(COURSE)}/{FILE}", json={"path": bob_path + ".x"})
        assert rename.status_code == 403
        assert refused_page(alice.http.get(f"/notebooks/{quote(bob_path)}"))
        # sessions and kernels
        session, kernel_id = copies["bob_session"]["id"], copies["bob_session"]["kernel"]["id"]
        assert alice.http.get(f"/api/sessions/{session}").status_code == 403
        assert alice.request("DELETE", f"/api/sessions/{session}").status_code == 403
        assert alice.start_session(bob_path).status_code == 403
        # a session of alice's own file may not take over bob's kernel by naming its id
        alice_path = f"users/alice/{COURSE}/{FILE}"
        attach = alice.request("POST", "/api/sessions", json={"path": alice_path, "type": "notebook", "name": FILE,
                                                                "kernel": {"id": kernel_id}})
        assert attach.status_code == 403, attach.text
        assert alice.http.get(f"/api/kernels/{kernel_id}").status_code == 403
        assert alice.request("POST", f"/api/kernels/{kernel_id}/interrupt").status_code == 403
        assert alice.request("POST", "/api/kernels", json={"name": "python3"}).status_code == 403
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            execute(sifu_stack.jupyter.url, kernel_id, alice.cookie_header(), "6*7", timeout=10)
        assert refused.value.status_code == 403
        # terminals are off; kernelspecs are read only
        assert alice.request("POST", "/api/terminals").status_code in (403, 404)
    finally:
        alice.close()
    # bob's own kernel still works for bob, and his session may name it (as Notebook's "change kernel" does)
    bob = copies["bob"]
    assert execute(sifu_stack.jupyter.url, kernel_id, bob.cookie_header(), "6*7") == "42"
    assert bob.request("PATCH", f"/api/sessions/{session}", json={"kernel": {"id": kernel_id}}).status_code == 200


# --- Jupyter without a Sifu identity -----------------------------------------------------------------------


def test_jupyter_refuses_requests_without_a_valid_sifu_identity(sifu_stack, copies):
    url = sifu_stack.jupyter.url
    assert httpx.get(f"{url}/api").status_code == 200  # the load balancer's health check stays open
    bob_session = hash_token(copies["tokens"]["bob"])
    forged = {signing.COOKIE_NAME: signing.sign_identity(b"x" * 64, "bob", int(time.time()) + 3600, bob_session)}
    # Signed with the right secret, but for a token Sifu never issued.
    unissued = {signing.COOKIE_NAME: signing.sign_identity(sifu_stack.secret.encode(), "bob", int(time.time()) + 3600, "0" * 64)}
    expired = sifu_stack.identity_cookie("bob", ttl=-5)
    tampered = {signing.COOKIE_NAME: sifu_stack.identity_cookie("alice")[signing.COOKIE_NAME].replace("v2.alice.", "v2.bob.")}
    for cookies in ({}, forged, unissued, expired, tampered):
        for path in ("/api/contents/users/bob", "/api/kernels", "/api/sessions", "/api/me"):
            assert httpx.get(url + path, cookies=cookies).status_code == 403, (path, cookies)
        page = httpx.get(f"{url}/notebooks/users/bob/{quote(COURSE)}/{FILE}", cookies=cookies)
        assert page.status_code == 302 and page.headers["location"].startswith("/login")
        login = httpx.get(f"{url}/login", cookies=cookies)
        assert login.status_code == 401
    # the kernel websocket too
    kernel_id = copies["bob_session"]["kernel"]["id"]
    for cookie in ("", f"{signing.COOKIE_NAME}={forged[signing.COOKIE_NAME]}"):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            execute(url, kernel_id, cookie, "6*7", timeout=10)
        assert refused.value.status_code == 403
    # no Jupyter token lets anyone in
    assert httpx.get(f"{url}/api/contents/users/bob", params={"token": ""}).status_code == 403


def test_revoking_the_token_ends_the_jupyter_identity_made_from_it(sifu_stack, copies):
    token = sifu_stack.token("alice")
    reply = httpx.get(serve_url(sifu_stack.sifu.url, "alice", COURSE, FILE, token))
    assert reply.status_code == 302
    name, value = reply.headers["set-cookie"].split(";")[0].split("=", 1)
    contents = f"{sifu_stack.jupyter.url}/api/contents/users/alice/{quote(COURSE)}/{FILE}?content=0"
    assert httpx.get(contents, cookies={name: value}).status_code == 200
    httpx.post(sifu_stack.sifu.url + "/revoke", json={"token_type_hint": "access_token", "token": token})
    deadline = time.monotonic() + 10  # Jupyter caches the answer for SIFU_REVOCATION_CACHE_SECONDS (1 s here)
    while httpx.get(contents, cookies={name: value}).status_code == 200:
        assert time.monotonic() < deadline, "Jupyter still accepts an identity whose token was revoked"
        time.sleep(0.2)
    assert httpx.get(contents, cookies={name: value}).status_code == 403


def test_wrong_client_secret_is_a_502_that_names_the_settings(sifu_stack, tmp_path):
    env = dict(sifu_stack.sifu.env, EDX_OAUTH2_CLIENT_SECRET="not-the-secret")
    other = start_sifu(tmp_path, env, name="sifu-bad-client")
    try:
        reply = httpx.post(f"{other.url}/token", timeout=20, json={
            "username": "alice", "auth_code": sifu_stack.devlms.auth_code("alice"), "grant_type": "edx_auth_code"})
        assert reply.status_code == 502 and reply.json()["error"] == "edx_client_rejected"
        assert "EDX_OAUTH2_CLIENT_SECRET" in reply.json()["detail"] and "not-the-secret" not in reply.text
    finally:
        other.stop()


def test_lab_and_notebook_background_routes_answer_without_errors_or_warnings(sifu_stack, copies):
    """GET /lab gave 500; the root listing and the events socket wrote warnings every few seconds (issue 13)."""
    alice = JupyterSession(sifu_stack.jupyter.url, sifu_stack.identity_cookie("alice"))
    try:
        for path in ("/lab", "/lab/", "/lab/tree/users/alice"):
            reply = alice.http.get(path)
            assert reply.status_code == 302 and reply.headers["location"] == "/tree/users/alice", path
        assert alice.http.get("/lab/api/settings/").status_code == 200  # Notebook 7's own settings stay served
        log_size = sifu_stack.jupyter.proc.log_path.stat().st_size
        for _ in range(3):
            assert alice.http.get("/api/contents", params={"content": "1", "hash": "0"}).status_code == 200
        time.sleep(0.5)
        with open(sifu_stack.jupyter.proc.log_path, errors="replace") as log:
            log.seek(log_size)
            warnings = [line for line in log if "/api/contents" in line and ("[W " in line or "[E " in line)]
        assert not warnings
    finally:
        alice.close()
