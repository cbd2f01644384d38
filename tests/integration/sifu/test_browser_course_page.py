"""In Chromium: the devlms course page frames the student's notebook through Sifu's serve redirect,
the identity cookie works inside the iframe, and a site not in frame-ancestors is blocked."""

from __future__ import annotations

import http.server
import threading

import pytest

from tests.integration.sifu.helpers import COURSE, prepare_copy, serve_url
from tests.support.browser import chromium, wait_for_frame
from tests.support.processes import free_port

pytestmark = pytest.mark.integration
FILE = "browser.ipynb"


def test_course_page_shows_the_notebook_in_an_iframe(sifu_stack, tmp_path):
    with chromium(tmp_path) as browser:
        page = browser.new_page()
        page.goto(f"{sifu_stack.devlms.url}/courses/{COURSE}/notebooks/{FILE}")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice-pass")
        page.click("button[type=submit]")
        page.wait_for_selector("iframe#notebook")
        frame = wait_for_frame(page, lambda url: url.startswith(sifu_stack.jupyter.url + "/notebooks/users/alice/"), timeout=30)
        # Notebook 7 renders the student's copy, with the cell the base notebook holds.
        frame.wait_for_selector("text=6*7", timeout=60_000)
        assert not frame.url.startswith("chrome-error://")
        page.close()


def test_a_site_not_in_frame_ancestors_cannot_frame_the_notebook(sifu_stack, tmp_path):
    token = sifu_stack.token("bob")
    prepare_copy(sifu_stack.sifu.url, token, "bob", COURSE, FILE)
    target = serve_url(sifu_stack.sifu.url, "bob", COURSE, FILE, token)

    class Framer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(f"<iframe id='f' src='{target}'></iframe>".encode())

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Framer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with chromium(tmp_path) as browser:
            page = browser.new_page()
            messages = []
            page.on("console", lambda msg: messages.append(msg.text))
            page.goto(f"http://127.0.0.1:{port}/")
            wait_for_frame(page, lambda url: url.startswith("chrome-error://"), timeout=30)
            assert any("frame-ancestors" in m for m in messages), messages
            page.close()
    finally:
        server.shutdown()
        server.server_close()
