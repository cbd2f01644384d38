"""Our side of the capacity benches (issue 14, items 2 and 3): Sifu + Jupyter in process mode behind nginx.

devlms (with load-test students student-1..N), Sifu (1 worker, the default) and Jupyter Server with the rendered
config, as tests/support/sifu_stack.py starts them, and nginx with the rendered vhosts in front
(bench/kernel_roundtrip.put_nginx_in_front). A student goes the XBlock's way: devlms sign-in (auth code), POST
/token, the student's copy, then the serve redirect through nginx, which sets the identity cookie Jupyter trusts;
then the notebook page, a session (which starts the kernel) and the kernel websocket, all through nginx.
Process mode without per-student kernel users: every kernel runs as the bench's user.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity.proctree import cmdline, descendants  # noqa: E402
from bench.kernel_roundtrip import put_nginx_in_front  # noqa: E402
from tests.integration.sifu.helpers import COURSE, prepare_copy, serve_url  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.sifu_stack import DevLms, JupyterProc, SifuProc, sifu_env, start_devlms, start_jupyter, start_sifu  # noqa: E402

FILE = "capacity.ipynb"
SIFU_WORKERS = 1  # config/defaults.yml sifu.workers


@dataclass
class Ours:
    devlms: DevLms
    sifu: SifuProc
    jupyter: JupyterProc
    sifu_url: str  # through nginx
    jupyter_url: str  # through nginx
    nginx_pid: int

    def pids(self) -> list[int]:
        """The instance's processes: Sifu's master and workers, Jupyter and its kernels, nginx (devlms stands in
        for the LMS: not part of the instance)."""
        return descendants([self.sifu.proc.popen.pid, self.jupyter.proc.popen.pid, self.nginx_pid])


def start_ours(exits: ExitStack, workdir: Path, students: int) -> Ours:
    """Everything is stopped (and reaped) when `exits` closes."""
    root = workdir / "notebooks"
    root.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    sifu_port = free_port()
    devlms = start_devlms(workdir, f"http://127.0.0.1:{sifu_port}", students=students)
    exits.callback(devlms.stop)
    jupyter = start_jupyter(workdir, root, secret, f"http://127.0.0.1:{sifu_port}", frame_ancestors=devlms.url)
    exits.callback(jupyter.stop)
    sifu = start_sifu(workdir, sifu_env(workdir, root, devlms, secret, jupyter.url), port=sifu_port, workers=SIFU_WORKERS)
    exits.callback(sifu.stop)
    urls = put_nginx_in_front(exits, workdir, "ours", sifu.url, jupyter.url)
    return Ours(devlms, sifu, jupyter, urls["sifu"], urls["jupyter"], nginx_master(workdir))


def nginx_master(workdir: Path) -> int:
    """The pid of the nginx this bench started under workdir (its master's command line names the prefix)."""
    return next(pid for pid in descendants([os.getpid()]) if cmdline(pid).startswith("nginx: master") and str(workdir) in cmdline(pid))


class OursStudent:
    """One student in a browser-like cookie jar, through nginx."""

    def __init__(self, ours: Ours, username: str):
        self.ours, self.username = ours, username
        self.http = httpx.Client(timeout=120, follow_redirects=False)
        self.kernel_id = self.token = ""
        self.serve_seconds = 0.0  # the last serve redirect's time

    def close(self) -> None:
        self.http.close()

    def sign_in(self) -> None:
        """devlms sign-in and the XBlock's calls (token, the student's copy), then the serve redirect, which sets
        the identity cookie in the jar."""
        code = self.ours.devlms.auth_code(self.username)
        reply = self.http.post(f"{self.ours.sifu_url}/token", headers={"Authorization": "Bearer None"}, json={
            "username": self.username, "auth_code": code, "grant_type": "edx_auth_code", "path": "create"})
        assert reply.status_code == 200, reply.text
        token = self.token = reply.json()["access_token"]
        prepare_copy(self.ours.sifu_url, token, self.username, COURSE, FILE)
        self.serve(token)

    def serve(self, token: str) -> None:
        started = time.perf_counter()
        reply = self.http.get(serve_url(self.ours.sifu_url, self.username, COURSE, FILE, token))
        self.serve_seconds = time.perf_counter() - started
        assert reply.status_code == 302, reply.text
        # The cookie is for Jupyter's host; both are 127.0.0.1 here, on other ports (cookies ignore ports).

    def notebook_path(self) -> str:
        return f"users/{self.username}/{COURSE}/{FILE}"

    def open_notebook(self) -> None:
        """The notebook page (Jupyter sets _xsrf when it renders one)."""
        reply = self.http.get(f"{self.ours.jupyter_url}/notebooks/users/{quote(self.username)}/{quote(COURSE)}/{FILE}")
        assert reply.status_code == 200, (reply.status_code, reply.text[:300])

    def start_session(self) -> str:
        path = self.notebook_path()
        reply = self.http.post(f"{self.ours.jupyter_url}/api/sessions", headers={"X-XSRFToken": self.http.cookies.get("_xsrf") or ""},
                               json={"path": path, "name": FILE, "type": "notebook", "kernel": {"name": "python3"}})
        assert reply.status_code == 201, (reply.status_code, reply.text[:300])
        self.kernel_id = reply.json()["kernel"]["id"]
        return self.kernel_id

    def websocket_url(self) -> str:
        return f"{self.ours.jupyter_url.replace('http://', 'ws://')}/api/kernels/{self.kernel_id}/channels"

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)

    def origin(self) -> str:
        return self.ours.jupyter_url
