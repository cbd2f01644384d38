"""The serve URL framed by a page on an origin not in frame-ancestors is blocked by the browser (CSP),
while the LMS page (allowed) frames it: through nginx, with the image's own headers."""

from __future__ import annotations

import http.server
import threading

import httpx
import pytest

from tests.integration.sifu.helpers import serve_url
from tests.support.browser import chromium, wait_for_frame
from tests.support.e2e_stack import COURSE, random_file
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e


def test_a_page_on_an_origin_not_allowed_cannot_frame_the_notebook(e2e_stack, tmp_path):
    file = random_file("framing")
    with httpx.Client(timeout=30) as client:
        allowed_src = e2e_stack.open_course_page(client, "bob", file)  # the XBlock flow creates bob's copy
    token = e2e_stack.token("bob")
    target = serve_url(e2e_stack.sifu_url, "bob", COURSE, file, token)
    assert allowed_src.startswith(e2e_stack.sifu_url)
    csp = httpx.get(target, follow_redirects=True).headers.get("content-security-policy", "")
    assert f"frame-ancestors {e2e_stack.devlms.url}" in csp.replace("'self' ", "") or e2e_stack.devlms.url in csp, csp

    class Framer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(f"<iframe id='f' src='{target}'></iframe>".encode())

        def log_message(self, *args):
            pass

    port = free_port()  # same host, another port: another origin, not in frame-ancestors
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Framer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with chromium(tmp_path) as browser:
            page = browser.new_page()
            messages: list[str] = []
            page.on("console", lambda msg: messages.append(msg.text))
            page.goto(f"http://127.0.0.1:{port}/")
            wait_for_frame(page, lambda url: url.startswith("chrome-error://"))
            assert any("frame-ancestors" in m for m in messages), messages
            page.close()
    finally:
        server.shutdown()
        server.server_close()
