"""The XBlock's calls to Sifu, written once for the integration tests."""

from __future__ import annotations

import contextlib
import time
from urllib.parse import quote

import httpx

from devlms.app import demo_notebook

COURSE = "course-v1:Org+Num+Run"
BASE_URL = "/v1/api/notebooks/courses/files/"
USER_URL = "/v1/api/notebooks/users/courses/files"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def base_exists(sifu_url: str, token: str, course: str, file: str) -> httpx.Response:
    return httpx.request("GET", sifu_url + BASE_URL, headers=auth(token), json={"notey_notey": {"course": course, "file": file}})


def base_create(sifu_url: str, token: str, course: str, file: str, data: str | None = None) -> httpx.Response:
    return httpx.post(sifu_url + BASE_URL, headers=auth(token), json={
        "notey_notey": {"course": course, "file": file, "data": data if data is not None else demo_notebook(file)}})


def user_call(method: str, sifu_url: str, token: str, username: str, course: str, file: str) -> httpx.Response:
    url = sifu_url + USER_URL + ("/" if method == "POST" else "")
    return httpx.request(method, url, headers=auth(token), json={"notey_notey": {"username": username, "course": course, "file": file}})


def serve_url(sifu_url: str, username: str, course: str, file: str, token: str | None = None) -> str:
    url = f"{sifu_url}/v1/api/notebooks/users/{quote(username, safe='')}/courses/{quote(course, safe='')}/files/{quote(file, safe='')}"
    return url + (f"?Authorization={quote('Bearer ' + token)}" if token else "")


def prepare_copy(sifu_url: str, token: str, username: str, course: str, file: str) -> None:
    """Base (if missing) and the student's copy, as the XBlock does before showing the iframe."""
    if not base_exists(sifu_url, token, course, file).json()["result"]:
        assert base_create(sifu_url, token, course, file).status_code == 200
    assert user_call("POST", sifu_url, token, username, course, file).json() == {"result": True}


@contextlib.contextmanager
def students_kernel(stack, token: str, username: str, file: str, course: str = COURSE):
    """A student's signed-in Jupyter client and the id of a kernel started for their copy of `file` (which
    must exist); the session is deleted after."""
    from tests.support.jupyter_client import JupyterSession

    client = JupyterSession(stack.jupyter.url, stack.identity_cookie(username, token=token))
    try:
        client.prime_xsrf(f"/notebooks/users/{username}/{quote(course)}/{file}")
        session = client.start_session(f"users/{username}/{course}/{file}")
        assert session.status_code == 201, session.text
        yield client, session.json()["kernel"]["id"]
        # Jupyter answers 500 to a DELETE while it is restarting the session's kernel (after a kill); ask again,
        # so that the next test on the same file does not inherit this session and its restarting kernel.
        for _ in range(20):
            if client.request("DELETE", f"/api/sessions/{session.json()['id']}").status_code != 500:
                break
            time.sleep(0.5)
    finally:
        client.close()
