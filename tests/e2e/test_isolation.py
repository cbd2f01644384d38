"""Through nginx, one student cannot reach another's notebook (UI and REST), and Jupyter without a
Sifu identity refuses HTTP and the kernel websocket."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
import websocket

from tests.integration.sifu.helpers import serve_url, user_call
from tests.support.browser import chromium, wait_for_frame
from tests.support.e2e_stack import COURSE, random_file
from tests.support.jupyter_client import execute

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def alice_copy(e2e_stack):
    """alice's copy, with a running kernel, created by the real XBlock flow through nginx."""
    file = random_file("isolation")
    alice, path = e2e_stack.jupyter_session("alice", file)
    session = alice.start_session(path)
    assert session.status_code == 201, session.text
    yield {"file": file, "path": path, "kernel": session.json()["kernel"]["id"], "alice": alice}
    alice.request("DELETE", f"/api/sessions/{session.json()['id']}")
    alice.close()


def test_second_student_cannot_open_the_first_students_notebook_over_rest(e2e_stack, alice_copy):
    file, path = alice_copy["file"], alice_copy["path"]
    bob_token = e2e_stack.token("bob")
    # Sifu's API and serve redirect, through nginx
    for method in ("GET", "POST", "DELETE"):
        reply = user_call(method, e2e_stack.sifu_url, bob_token, "alice", COURSE, file)
        assert reply.status_code == 403, (method, reply.text)
    serve = httpx.get(serve_url(e2e_stack.sifu_url, "alice", COURSE, file, bob_token))
    assert serve.status_code == 403 and "set-cookie" not in serve.headers
    # Jupyter's REST API and kernel websocket with bob's own, valid identity
    bob, _ = e2e_stack.jupyter_session("bob", file)
    try:
        assert bob.http.get(f"/api/contents/{quote(path)}").status_code == 403
        assert bob.request("PUT", f"/api/contents/{quote(path)}",
                           json={"type": "file", "format": "text", "content": "x"}).status_code == 403
        assert bob.start_session(path).status_code == 403
        assert bob.http.get(f"/api/kernels/{alice_copy['kernel']}").status_code == 403
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            execute(e2e_stack.jupyter_url, alice_copy["kernel"], bob.cookie_header(), "6*7", timeout=10)
        assert refused.value.status_code == 403
    finally:
        bob.close()
    # alice's kernel still answers alice, and her file is untouched
    assert execute(e2e_stack.jupyter_url, alice_copy["kernel"], alice_copy["alice"].cookie_header(), "6*7") == "42"
    assert e2e_stack.copy_path("alice", file).is_file()


def test_second_student_cannot_open_the_first_students_notebook_in_the_browser(e2e_stack, alice_copy, tmp_path):
    file = alice_copy["file"]
    with chromium(tmp_path) as browser:
        page = browser.new_page()
        # bob signs in at devlms: his course page frames his own copy
        page.goto(e2e_stack.course_page(file))
        page.fill("input[name=username]", "bob")
        page.fill("input[name=password]", "bob-pass")
        page.click("button[type=submit]")
        page.wait_for_selector("iframe#notebook")
        wait_for_frame(page, lambda url: url.startswith(f"{e2e_stack.jupyter_url}/notebooks/users/bob/"))
        # with his identity cookie in the browser, alice's notebook page is refused
        reply = page.goto(f"{e2e_stack.jupyter_url}/notebooks/{quote(alice_copy['path'])}")
        assert reply.status in (403, 401) or "/login" in page.url, (reply.status, page.url)
        api = page.request.get(f"{e2e_stack.jupyter_url}/api/contents/{quote(alice_copy['path'])}")
        assert api.status == 403
        page.close()


def test_jupyter_without_a_sifu_identity_refuses_http_and_the_websocket(e2e_stack, alice_copy):
    for base in (e2e_stack.jupyter_url, e2e_stack.direct_jupyter_url):  # through nginx and on the app port
        assert httpx.get(f"{base}/api").status_code == 200  # the load balancer's health check stays open
        for path in ("/api/contents/users/alice", "/api/kernels", "/api/sessions", f"/api/contents/{quote(alice_copy['path'])}"):
            assert httpx.get(base + path).status_code == 403, (base, path)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            execute(base, alice_copy["kernel"], "", "6*7", timeout=10)
        assert refused.value.status_code == 403
