"""Talking to the real Jupyter Server as a signed-in student would: XSRF, sessions, kernel websocket."""

from __future__ import annotations

import json
import os
import time
import uuid
from urllib.parse import quote, urlsplit

import httpx


class JupyterSession:
    """An httpx client holding a Sifu identity cookie and Jupyter's _xsrf cookie.

    Call prime_xsrf(page) before any mutating request; request() adds the X-XSRFToken header.
    """

    def __init__(self, base_url: str, cookies: dict[str, str]):
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, cookies=cookies, timeout=30, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def prime_xsrf(self, page_path: str) -> httpx.Response:
        """GET a page (e.g. the notebook's /notebooks/... URL): Jupyter sets the _xsrf cookie when it renders
        one, and every later POST/PUT/PATCH/DELETE sends it back as X-XSRFToken."""
        return self.http.get(page_path)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        token = self.http.cookies.get("_xsrf")
        if token:
            headers["X-XSRFToken"] = token
        return self.http.request(method, path, headers=headers, **kwargs)

    def start_session(self, notebook_path: str) -> httpx.Response:
        return self.request("POST", "/api/sessions", json={
            "path": notebook_path, "name": notebook_path.rsplit("/", 1)[-1], "type": "notebook", "kernel": {"name": "python3"}})

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)


def send_execute(ws, code: str) -> str:
    """Send an execute_request for `code` on an open kernel websocket (legacy JSON protocol); its msg_id."""
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    return msg_id


def execute(base_url: str, kernel_id: str, cookie_header: str, code: str, timeout: float = 60) -> str:
    """Run code on the kernel over its websocket channel; return the execute_result's text/plain."""
    import websocket

    split = urlsplit(base_url)
    secure = split.scheme == "https"
    ws_url = f"{'wss' if secure else 'ws'}://{split.netloc}/api/kernels/{quote(kernel_id)}/channels?session_id={uuid.uuid4().hex}"
    # wss: trust what httpx trusts here (SSL_CERT_FILE, e.g. the sandbox's CA next to the machine's).
    sslopt = {"ca_certs": os.environ["SSL_CERT_FILE"]} if secure and os.environ.get("SSL_CERT_FILE") else None
    ws = websocket.create_connection(ws_url, header=[f"Cookie: {cookie_header}"], timeout=timeout,
                                     origin=f"{split.scheme}://{split.netloc}", sslopt=sslopt)
    try:
        msg_id = send_execute(ws, code)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_result":
                return msg["content"]["data"]["text/plain"]
            if msg["msg_type"] == "error":
                raise AssertionError(f"kernel error: {msg['content']}")
        raise AssertionError("no execute_result before the timeout")
    finally:
        ws.close()
