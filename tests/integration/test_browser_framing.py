"""The browser test bed itself: CSP frame-ancestors blocks a frame, and our CA is trusted over https.

These pin down how blocking is observed (chrome-error:// frame URL and the console message; the
iframe load event fires either way), which the end-to-end tests rely on.
"""

import http.server
import ssl
import threading

import pytest

from tests.support.browser import chromium
from tests.support.processes import free_port
from tests.support.tls import CertificateAuthority

pytestmark = pytest.mark.integration


def serve(port, routes, cert=None):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body, headers = routes.get(self.path.split("?")[0], ("not found", {}))
            self.send_response(200 if self.path.split("?")[0] in routes else 404)
            for name, value in {"Content-Type": "text/html", **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert.cert, cert.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_csp_frame_ancestors_blocks_a_foreign_parent_and_allows_ours(tmp_path):
    ca = CertificateAuthority(tmp_path / "ca")
    ca.trust_in_nss(tmp_path / "home")
    port_app, port_lms, port_evil = free_port(), free_port(), free_port()
    app_cert, lms_cert, evil_cert = ca.issue("notebooks.test"), ca.issue("lms.test"), ca.issue("evil.test")
    allowed = f"https://lms.test:{port_lms}"
    app = serve(port_app, {"/nb": ("<p id=nb>notebook</p>", {"Content-Security-Policy": f"frame-ancestors 'self' {allowed}"})}, app_cert)
    frame = f'<iframe id=f src="https://notebooks.test:{port_app}/nb"></iframe>'
    lms = serve(port_lms, {"/course": (frame, {})}, lms_cert)
    evil = serve(port_evil, {"/course": (frame, {})}, evil_cert)
    try:
        with chromium(tmp_path / "home", {"*.test": "127.0.0.1"}) as browser:
            page = browser.new_page()
            page.goto(f"https://lms.test:{port_lms}/course")  # no certificate error: the CA is trusted
            page.frame_locator("#f").locator("#nb").wait_for(timeout=10000)
            messages = []
            page = browser.new_page()
            page.on("console", lambda m: messages.append(m.text))
            page.goto(f"https://evil.test:{port_evil}/course")
            page.wait_for_timeout(1500)
            child = page.frames[1]
            assert child.url.startswith("chrome-error://"), child.url
            assert any("frame-ancestors" in m for m in messages), messages
    finally:
        for server in (app, lms, evil):
            server.shutdown()
