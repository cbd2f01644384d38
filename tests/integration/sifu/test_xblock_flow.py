"""The XBlock's whole flow against real processes: devlms (edX) ↔ Sifu ↔ Jupyter, SQLite and PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest

from sifu import signing
from tests.integration.sifu.helpers import COURSE, base_create, base_exists, serve_url, user_call
from tests.support.jupyter_client import JupyterSession, execute

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sifu_stack", "sifu_stack_postgres"], ids=["sqlite", "postgresql"])
def stack(request):
    return request.getfixturevalue(request.param)


def test_xblock_flow_end_to_end(stack):
    file = f"Lab {stack.sifu.env.get('SIFU_DATABASE_URL', 'sqlite')[:8]}.ipynb".replace(":", "")
    # 1. /token with a fresh auth code (the XBlock sends "Bearer None") gives a token.
    token = stack.token("alice")
    # 2. base missing, then created.
    assert base_exists(stack.sifu.url, token, COURSE, file).json() == {"result": False}
    assert base_create(stack.sifu.url, token, COURSE, file).json() == {"result": True}
    assert base_exists(stack.sifu.url, token, COURSE, file).json() == {"result": True}
    assert (stack.root / "courses" / COURSE / file).is_file()
    # 3. the student's copy missing, then created, then present.
    assert user_call("GET", stack.sifu.url, token, "alice", COURSE, file).json() == {"result": False}
    assert user_call("POST", stack.sifu.url, token, "alice", COURSE, file).json() == {"result": True}
    assert user_call("GET", stack.sifu.url, token, "alice", COURSE, file).json() == {"result": True}
    copy = stack.root / "users" / "alice" / COURSE / file
    assert json.loads(copy.read_text())["cells"][1]["source"] == ["6*7"]
    # 4. the serve URL (token in the query, as in the iframe) answers 302 with the identity cookie.
    reply = httpx.get(serve_url(stack.sifu.url, "alice", COURSE, file, token))
    assert reply.status_code == 302
    assert reply.headers["location"].startswith(stack.jupyter.url + "/notebooks/users/alice/")
    set_cookie = reply.headers["set-cookie"]
    assert set_cookie.startswith(f"{signing.COOKIE_NAME}=") and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    cookie_value = set_cookie.split(";")[0].split("=", 1)[1]
    log = (stack.workdir / "sifu.log").read_text()
    assert "Authorization=[redacted]" in log and token not in log  # the iframe URL's token never reaches the log
    # 5. Jupyter accepts that cookie, serves the notebook page and its contents, and runs its kernel.
    jupyter = JupyterSession(stack.jupyter.url, {signing.COOKIE_NAME: cookie_value})
    try:
        page = jupyter.http.get(reply.headers["location"][len(stack.jupyter.url):])
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert f"frame-ancestors 'self' {stack.devlms.url}" in page.headers["content-security-policy"]
        contents = jupyter.http.get(f"/api/contents/users/alice/{COURSE}/{file}")
        assert contents.status_code == 200 and contents.json()["content"]["cells"][1]["source"] == "6*7"
        session = jupyter.start_session(f"users/alice/{COURSE}/{file}")
        assert session.status_code == 201, session.text
        kernel_id = session.json()["kernel"]["id"]
        assert execute(stack.jupyter.url, kernel_id, jupyter.cookie_header(), "6*7") == "42"
        jupyter.request("DELETE", f"/api/sessions/{session.json()['id']}")
    finally:
        jupyter.close()
    # 6. after /revoke the token is refused everywhere in Sifu.
    assert httpx.post(stack.sifu.url + "/revoke", json={"token_type_hint": "access_token", "token": token}).json() == {"result": True}
    assert user_call("GET", stack.sifu.url, token, "alice", COURSE, file).status_code == 401
    assert httpx.get(serve_url(stack.sifu.url, "alice", COURSE, file, token)).status_code == 401


def test_header_token_and_query_parameters_work_too(sifu_stack):
    token = sifu_stack.token("bob")
    file = "query.ipynb"
    assert base_create(sifu_stack.sifu.url, token, COURSE, file).status_code == 200
    reply = httpx.get(sifu_stack.sifu.url + "/v1/api/notebooks/courses/files/", params={"course": COURSE, "file": file},
                      headers={"Authorization": f"Bearer {token}"})
    assert reply.json() == {"result": True}
    assert user_call("POST", sifu_stack.sifu.url, token, "bob", COURSE, file).json() == {"result": True}
    reply = httpx.get(serve_url(sifu_stack.sifu.url, "bob", COURSE, file), headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 302


def test_course_page_runs_the_xblock_flow_and_embeds_the_serve_url(sifu_stack):
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        sifu_stack.devlms.login(browser, "alice")
        page = browser.get(f"{sifu_stack.devlms.url}/courses/{COURSE}/notebooks/course-page.ipynb")
        assert page.status_code == 200, page.text
        assert "<iframe" in page.text and "Authorization=Bearer%20" in page.text
    assert (sifu_stack.root / "users" / "alice" / COURSE / "course-page.ipynb").is_file()


def test_second_create_keeps_the_students_edits(sifu_stack):
    token = sifu_stack.token("alice")
    file = "edits.ipynb"
    base_create(sifu_stack.sifu.url, token, COURSE, file)
    user_call("POST", sifu_stack.sifu.url, token, "alice", COURSE, file)
    copy = sifu_stack.root / "users" / "alice" / COURSE / file
    copy.write_text('{"cells": [], "metadata": {"edited": true}, "nbformat": 4, "nbformat_minor": 5}')
    assert user_call("POST", sifu_stack.sifu.url, token, "alice", COURSE, file).json() == {"result": True}
    assert json.loads(copy.read_text())["metadata"] == {"edited": True}


def test_base_notebook_replacement_needs_staff(sifu_stack):
    file = "staff.ipynb"
    student, staff = sifu_stack.token("bob"), sifu_stack.token("instructor")
    assert base_create(sifu_stack.sifu.url, student, COURSE, file).status_code == 200
    before = (sifu_stack.root / "courses" / COURSE / file).read_bytes()
    other = json.dumps({"cells": [], "metadata": {"v": 2}, "nbformat": 4, "nbformat_minor": 5})
    refused = base_create(sifu_stack.sifu.url, student, COURSE, file, other)
    assert refused.status_code == 403 and refused.json()["error"] == "staff_required"
    assert (sifu_stack.root / "courses" / COURSE / file).read_bytes() == before
    assert base_create(sifu_stack.sifu.url, staff, COURSE, file, other).json() == {"result": True}
    assert json.loads((sifu_stack.root / "courses" / COURSE / file).read_text())["metadata"] == {"v": 2}
    # Deleting a base is staff only; deleting a copy is its owner's.
    delete = {"notey_notey": {"course": COURSE, "file": file}}
    url = sifu_stack.sifu.url + "/v1/api/notebooks/courses/files/"
    assert httpx.request("DELETE", url, headers={"Authorization": f"Bearer {student}"}, json=delete).status_code == 403
    assert httpx.request("DELETE", url, headers={"Authorization": f"Bearer {staff}"}, json=delete).json() == {"result": True}
    assert not (sifu_stack.root / "courses" / COURSE / file).exists()


def test_service_token_acts_as_staff_on_base_notebooks(sifu_stack):
    """SIFU_SERVICE_TOKEN (the deploy's smoke check) creates, finds and deletes a base notebook like staff."""
    from tests.support.sifu_stack import SERVICE_TOKEN

    file, course = "smoke.ipynb", "sifu-smoke"
    url = sifu_stack.sifu.url + "/v1/api/notebooks/courses/files/"
    assert base_create(sifu_stack.sifu.url, SERVICE_TOKEN, course, file).json() == {"result": True}
    assert base_exists(sifu_stack.sifu.url, SERVICE_TOKEN, course, file).json() == {"result": True}
    delete = {"notey_notey": {"course": course, "file": file}}
    assert httpx.request("DELETE", url, headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}, json=delete).json() == \
        {"result": True}
    assert base_exists(sifu_stack.sifu.url, SERVICE_TOKEN, course, file).json() == {"result": False}
    # A token one character off is nobody.
    wrong = SERVICE_TOKEN[:-1] + "6"
    assert base_exists(sifu_stack.sifu.url, wrong, course, file).status_code == 401


def test_missing_base_is_404_with_result_false(sifu_stack):
    token = sifu_stack.token("alice")
    reply = user_call("POST", sifu_stack.sifu.url, token, "alice", COURSE, "no-such-base.ipynb")
    assert reply.status_code == 404 and reply.json()["result"] is False
