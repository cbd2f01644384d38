"""In Chromium over real https: an LMS on one site frames the notebook on another (SIFU_COOKIE_SECURE=true).

Sifu's serve redirect sets the identity cookie with SameSite=None; Secure; Partitioned, and Chromium sends
it back to Jupyter inside the cross-site iframe, so the student's notebook renders there. Jupyter's own
_xsrf cookie is Partitioned too (sifu.jupyter.PartitionCrossSiteCookies), so in the iframe the student
starts a kernel (POST /api/sessions), runs a cell over the kernel websocket and saves (PUT /api/contents).
The cookies are kept in the LMS's partition: the same Jupyter page opened top-level does not receive them.
"""

from __future__ import annotations

import http.server
import json
import secrets
import shutil
import ssl
import threading
import time
from urllib.parse import quote, urlsplit

import httpx
import pytest

from devlms.app import demo_notebook
from tests.integration.sifu.helpers import BASE_URL, COURSE, USER_URL, serve_url
from tests.support.browser import chromium
from tests.support.processes import free_port
from tests.support.sifu_stack import _workdir, sifu_env, start_devlms, start_jupyter, start_sifu
from tests.support.tls import CertificateAuthority

pytestmark = pytest.mark.integration
FILE = "partitioned.ipynb"
LMS_HOST, NOTEBOOKS_HOST = "lms.test", "notebooks.test"


def _https_page(port: int, html: str, cert) -> http.server.ThreadingHTTPServer:
    """The LMS's course page: one static page with the XBlock's iframe."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert, cert.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def https_stack():
    """devlms (http, server side only), and Sifu and Jupyter serving https on notebooks.test."""
    workdir = _workdir("sifu-https-")
    ca = CertificateAuthority(workdir / "ca")
    home = workdir / "browser-home"
    ca.trust_in_nss(home)
    cert = ca.issue(NOTEBOOKS_HOST, "127.0.0.1")
    lms_port, sifu_port, jupyter_port = free_port(), free_port(), free_port()
    lms_origin = f"https://{LMS_HOST}:{lms_port}"
    root = workdir / "notebooks"
    root.mkdir()
    secret = secrets.token_hex(32)
    started = []
    try:
        devlms = start_devlms(workdir, f"https://{NOTEBOOKS_HOST}:{sifu_port}")
        started.append(devlms)
        jupyter = start_jupyter(workdir, root, secret, f"https://127.0.0.1:{sifu_port}", frame_ancestors=lms_origin,
                                cookie_secure=True, port=jupyter_port, tls=cert, ca=ca.cert_path)
        started.append(jupyter)
        env = sifu_env(workdir, root, devlms, secret, f"https://{NOTEBOOKS_HOST}:{jupyter_port}",
                       SIFU_FRAME_ANCESTORS=lms_origin, SIFU_COOKIE_SECURE="true")
        sifu = start_sifu(workdir, env, port=sifu_port, tls=cert, ca=ca.cert_path)
        started.append(sifu)
        yield {"workdir": workdir, "root": root, "ca": ca, "home": home, "devlms": devlms, "sifu": sifu, "jupyter": jupyter,
               "lms_port": lms_port, "sifu_port": sifu_port, "jupyter_port": jupyter_port}
    finally:
        for part in reversed(started):
            part.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _token_and_copy(stack, username: str) -> str:
    """The XBlock's server-side calls over https: a token, the base notebook, the student's copy."""
    with httpx.Client(base_url=stack["sifu"].url, verify=ssl.create_default_context(cafile=stack["ca"].cert_path), timeout=20) as sifu:
        reply = sifu.post("/token", headers={"Authorization": "Bearer None"}, json={
            "username": username, "auth_code": stack["devlms"].auth_code(username), "grant_type": "edx_auth_code", "path": "create"})
        assert reply.status_code == 200, reply.text
        token = reply.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        base = sifu.post(BASE_URL, headers=auth, json={"notey_notey": {"course": COURSE, "file": FILE, "data": demo_notebook(FILE)}})
        assert base.status_code == 200, base.text
        copy = sifu.post(USER_URL + "/", headers=auth, json={"notey_notey": {"username": username, "course": COURSE, "file": FILE}})
        assert copy.json() == {"result": True}, copy.text
    return token


# Third-party cookies blocked, as browsers that have phased them out do. (Debian's Chromium 156 driven by
# Playwright already drops unpartitioned cookies in a cross-site iframe without it, measured; the switch
# makes the test independent of that default.)
BLOCK_THIRD_PARTY_COOKIES = "--test-third-party-cookie-phaseout"


def test_the_partitioned_identity_cookie_works_inside_a_cross_site_iframe(https_stack):
    stack = https_stack
    token = _token_and_copy(stack, "alice")
    sifu_public = f"https://{NOTEBOOKS_HOST}:{stack['sifu_port']}"
    iframe_src = serve_url(sifu_public, "alice", COURSE, FILE, token)
    notebook_url = f"https://{NOTEBOOKS_HOST}:{stack['jupyter_port']}/notebooks/users/alice/{quote(COURSE)}/{FILE}"
    on_disk = stack["root"] / "users" / "alice" / COURSE / FILE

    # The header itself, from the real server.
    reply = httpx.get(serve_url(stack["sifu"].url, "alice", COURSE, FILE, token), verify=ssl.create_default_context(cafile=stack["ca"].cert_path))
    assert reply.status_code == 302
    attributes = [part.strip() for part in reply.headers["set-cookie"].split(";")]
    assert attributes[0].startswith("sifu_identity=")
    assert attributes[1:] == ["Path=/", attributes[2], "HttpOnly", "Secure", "SameSite=None", "Partitioned"]

    # Jupyter's _xsrf cookie, from the real server's notebook page: partitioned as well.
    page_reply = httpx.get(stack["jupyter"].url + urlsplit(notebook_url).path, headers={"Cookie": attributes[0]},
                           verify=ssl.create_default_context(cafile=stack["ca"].cert_path))
    assert page_reply.status_code == 200, page_reply.status_code
    xsrf_headers = [h for h in page_reply.headers.get_list("set-cookie") if h.startswith("_xsrf=")]
    assert len(xsrf_headers) == 1 and xsrf_headers[0].endswith("; Path=/; SameSite=None; Secure; Partitioned"), xsrf_headers

    lms = _https_page(stack["lms_port"], f'<iframe id="notebook" src="{iframe_src}" width="900" height="600"></iframe>',
                      stack["ca"].issue(LMS_HOST))
    try:
        with chromium(stack["home"], {"*.test": "127.0.0.1"}, (BLOCK_THIRD_PARTY_COOKIES,)) as browser:
            context = browser.new_context()
            page = context.new_page()
            # Jupyter answers a write whose _xsrf cookie is missing or mismatched with 403. (GETs are not
            # XSRF-checked; Notebook 7's own polls of the root listing and the events socket get 403 by design.)
            refused = []
            page.on("response", lambda r: refused.append(f"{r.request.method} {r.url}")
                    if r.status == 403 and r.request.method not in ("GET", "HEAD") else None)
            sockets, kernel_replies = [], []

            def watch(socket):
                sockets.append(socket.url)
                if "/channels" in socket.url:  # the kernel's websocket: its first reply means it is connected
                    socket.on("framereceived", lambda payload: kernel_replies.append(1) if b"kernel_info_reply" in (
                        payload if isinstance(payload, bytes) else payload.encode()) else None)

            page.on("websocket", watch)
            page.goto(f"https://{LMS_HOST}:{stack['lms_port']}/course")
            frame = page.frame_locator("#notebook")
            # Notebook 7 renders the student's copy in the cross-site iframe: Jupyter received the cookie.
            frame.locator("text=6*7").first.wait_for(timeout=60_000)
            child = page.frames[1]
            assert urlsplit(child.url).path == urlsplit(notebook_url).path, child.url

            identity = [c for c in context.cookies() if c["name"] == "sifu_identity"]
            assert len(identity) == 1, context.cookies()
            cookie = identity[0]
            assert cookie["domain"] == NOTEBOOKS_HOST and cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "None"
            assert cookie.get("partitionKey") == f"https://{LMS_HOST}", cookie

            # The student runs a cell: Notebook 7 started the kernel (POST /api/sessions, XSRF-checked) and
            # the code and its result travel over the kernel websocket (its handshake, a GET, carries the
            # partitioned identity cookie). Typing waits for the kernel's first reply on that socket: before
            # it, Notebook 7 takes Shift+Enter without running the cell (seen on a loaded machine).
            deadline = time.monotonic() + 60
            while not kernel_replies and time.monotonic() < deadline:
                page.wait_for_timeout(200)  # (Playwright delivers the websocket and response events meanwhile)
            assert kernel_replies, f"no kernel reply over a websocket; writes refused: {refused}; sockets: {sockets[:5]}"
            frame.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=60_000)
            editor = frame.locator(".jp-CodeCell .cm-content").first
            editor.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("6*7")
            page.keyboard.press("Shift+Enter")
            frame.locator(".jp-CodeCell .jp-OutputArea-output", has_text="42").first.wait_for(timeout=90_000)

            # ... and saves (PUT /api/contents, XSRF-checked): the file on the notebook root holds the output.
            page.keyboard.press("Control+S")
            deadline = time.monotonic() + 30
            while not _has_output(on_disk, "42") and time.monotonic() < deadline:
                page.wait_for_timeout(300)  # (lets Playwright deliver the response events meanwhile)
            assert _has_output(on_disk, "42"), on_disk.read_text()
            assert refused == [], refused

            xsrf = [c for c in context.cookies() if c["name"] == "_xsrf"]
            assert len(xsrf) == 1 and xsrf[0]["secure"] and xsrf[0]["sameSite"] == "None", xsrf
            assert xsrf[0].get("partitionKey") == f"https://{LMS_HOST}", xsrf

            # Top-level, the same page is outside the LMS's partition: no identity, so Jupyter refuses it.
            top = context.new_page()
            answer = top.goto(notebook_url)
            assert answer is not None and answer.status == 401, (answer and answer.status, top.url)
            assert "only sign-ins made through Sifu" in top.content()
            context.close()
    finally:
        lms.shutdown()
        lms.server_close()


def _has_output(path, text: str) -> bool:
    """Does a code cell of the saved notebook at `path` show `text` as its result?"""
    try:
        cells = json.loads(path.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return False  # not there yet, or caught mid-write
    for cell in cells:
        for output in cell.get("outputs", []):
            plain = output.get("data", {}).get("text/plain", "")
            if text == ("".join(plain) if isinstance(plain, list) else plain):
                return True
    return False
