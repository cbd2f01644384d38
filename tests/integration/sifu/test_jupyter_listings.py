"""Jupyter's session and kernel lists show a student only their own (paths name other students and files)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.integration.sifu.helpers import COURSE, prepare_copy
from tests.support.jupyter_client import JupyterSession, execute

pytestmark = pytest.mark.integration
FILE = "listings.ipynb"


def _path(username: str, file: str = FILE) -> str:
    return f"users/{username}/{COURSE}/{file}"


@pytest.fixture(scope="module")
def students(sifu_stack):
    """alice and bob each signed in to Jupyter with a running session on their own copy."""
    clients, sessions = {}, {}
    for name in ("alice", "bob"):
        prepare_copy(sifu_stack.sifu.url, sifu_stack.token(name), name, COURSE, FILE)
        client = JupyterSession(sifu_stack.jupyter.url, sifu_stack.identity_cookie(name))
        assert client.prime_xsrf(f"/notebooks/{quote(_path(name))}").status_code == 200
        reply = client.start_session(_path(name))
        assert reply.status_code == 201, reply.text
        clients[name], sessions[name] = client, reply.json()
    yield clients, sessions
    for name, client in clients.items():
        client.request("DELETE", f"/api/sessions/{sessions[name]['id']}")
        client.close()


def test_each_student_lists_only_their_own_sessions_and_kernels(students):
    clients, sessions = students
    for me, other in (("alice", "bob"), ("bob", "alice")):
        listed = clients[me].http.get("/api/sessions")
        assert listed.status_code == 200
        assert [s["id"] for s in listed.json()] == [sessions[me]["id"]]
        assert listed.json()[0]["path"] == _path(me)
        assert f"users/{other}" not in listed.text
        kernels = clients[me].http.get("/api/kernels")
        assert kernels.status_code == 200
        assert [k["id"] for k in kernels.json()] == [sessions[me]["kernel"]["id"]]
        assert sessions[other]["kernel"]["id"] not in kernels.text
        # /api/status counts kernels too: only one's own.
        assert clients[me].http.get("/api/status").json()["kernels"] == 1


def test_the_notebook_uis_calls_still_work_for_a_student(students, sifu_stack):
    """What Notebook 7 polls and does from its tree and notebook pages, done over REST as bob."""
    clients, sessions = students
    bob = clients["bob"]
    for path in ("/api/me", "/api/kernelspecs", "/api/status", f"/api/contents/users/bob/{quote(COURSE)}?content=1",
                 f"/api/sessions/{sessions['bob']['id']}", f"/api/kernels/{sessions['bob']['kernel']['id']}"):
        assert bob.http.get(path).status_code == 200, path
    # A second notebook of his own: started, listed next to the first, renamed, run, stopped.
    second = bob.start_session(_path("bob", "second.ipynb"))
    assert second.status_code == 201, second.text
    second_id, second_kernel = second.json()["id"], second.json()["kernel"]["id"]
    try:
        assert {s["id"] for s in bob.http.get("/api/sessions").json()} == {sessions["bob"]["id"], second_id}
        assert {k["id"] for k in bob.http.get("/api/kernels").json()} == {sessions["bob"]["kernel"]["id"], second_kernel}
        renamed = bob.request("PATCH", f"/api/sessions/{second_id}", json={"path": _path("bob", "renamed.ipynb")})
        assert renamed.status_code == 200, renamed.text
        assert _path("bob", "renamed.ipynb") in [s["path"] for s in bob.http.get("/api/sessions").json()]
        assert execute(sifu_stack.jupyter.url, second_kernel, bob.cookie_header(), "6*7") == "42"
        # alice still sees only her one session
        assert [s["id"] for s in clients["alice"].http.get("/api/sessions").json()] == [sessions["alice"]["id"]]
    finally:
        assert bob.request("DELETE", f"/api/sessions/{second_id}").status_code == 204
    assert [s["id"] for s in bob.http.get("/api/sessions").json()] == [sessions["bob"]["id"]]
    assert second_kernel not in bob.http.get("/api/kernels").text


def test_the_server_wide_events_socket_is_closed_to_students(students, sifu_stack):
    """It would broadcast every student's contents events (with their paths) to every subscriber."""
    import websocket

    clients, _ = students
    alice = clients["alice"]
    netloc = sifu_stack.jupyter.url.split("://", 1)[1]
    # Accepted (a refused socket made Notebook 7 retry, with a warning each time), and silent: bob's save reaches nobody.
    sock = websocket.create_connection(f"ws://{netloc}/api/events/subscribe", header=[f"Cookie: {alice.cookie_header()}"],
                                       origin=sifu_stack.jupyter.url, timeout=10)
    try:
        bob = clients["bob"]
        saved = bob.request("PUT", "/api/contents/users/bob/events-probe.txt",
                            json={"type": "file", "format": "text", "content": "x"})
        assert saved.status_code in (200, 201), saved.text
        sock.settimeout(2)
        with pytest.raises(websocket.WebSocketTimeoutException):
            sock.recv()
    finally:
        sock.close()
    with pytest.raises(websocket.WebSocketException):  # without an identity: sent to the (closed) login
        websocket.create_connection(f"ws://{netloc}/api/events/subscribe", origin=sifu_stack.jupyter.url, timeout=10)
    emitted = alice.request("POST", "/api/events", json={
        "schema_id": "https://events.jupyter.org/jupyter_server/contents_service/v1", "version": "1",
        "data": {"action": "save", "path": "users/bob/forged.ipynb"}})
    assert emitted.status_code == 403
