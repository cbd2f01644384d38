"""A private git repository served over HTTP with a password: git's own `git http-backend` (smart protocol).

What it is: a small Python HTTP server on 127.0.0.1 that demands Basic auth whose password is the
token, then hands each request to `git http-backend` as CGI, as a git host would. It is plain
HTTP, not HTTPS (the config insists on https URLs for real repositories; tests set the URL on the
validated settings object). It records the Authorization headers it received, so a test can see
that the token was really used by the clone.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.test",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.test"}


@dataclass
class GitServer:
    url: str  # http://127.0.0.1:PORT/<name>.git
    token: str = field(repr=False)
    auth_seen: list[str] = field(default_factory=list, repr=False)
    refused: int = 0
    server: ThreadingHTTPServer | None = field(default=None, repr=False)


def _handler(project_root: Path, state: GitServer):
    backend = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                state.auth_seen.append(header)
                _, _, password = base64.b64decode(header[6:]).decode(errors="replace").partition(":")
                if password == state.token:
                    return True
            state.refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private sifu"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False

        def _cgi(self):
            if not self._authorized():
                return
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(project_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": parts.path,
                "QUERY_STRING": parts.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_USER": "deploy",
                "REMOTE_ADDR": self.client_address[0],
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            }
            result = subprocess.run([f"{backend}/git-http-backend"], input=body, env=env, capture_output=True)
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            if not _:
                head, _, payload = result.stdout.partition(b"\n\n")
            status = 200
            headers = []
            for line in head.decode(errors="replace").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _cgi
        do_POST = _cgi

    return Handler


def make_repository(root: Path, files: dict[str, bytes], name: str = "sifu.git") -> Path:
    """A bare repository whose main branch holds files; returns the bare repository's path."""
    work = root / "work"
    work.mkdir(parents=True)
    for path, content in files.items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Sifu for the image test"]):
        subprocess.run(["git", "-C", str(work), *args], check=True, env=env, capture_output=True)
    bare = root / "srv" / name
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, capture_output=True)
    return bare


def start_git_server(bare: Path, token: str) -> GitServer:
    state = GitServer(url="", token=token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(bare.parent, state))
    state.server = server
    state.url = f"http://127.0.0.1:{server.server_address[1]}/{bare.name}"
    threading.Thread(target=server.serve_forever, name="git-http", daemon=True).start()
    return state


def stop_git_server(state: GitServer) -> None:
    if state.server:
        state.server.shutdown()
        state.server.server_close()


@pytest.fixture
def git_server_factory():
    """Start private git servers: factory(files, token) -> GitServer; all stopped afterwards."""
    started: list[GitServer] = []
    roots: list[str] = []

    def factory(files: dict[str, bytes], token: str) -> GitServer:
        root = tempfile.mkdtemp(prefix="sifu-git-")
        roots.append(root)
        state = start_git_server(make_repository(Path(root), files), token)
        started.append(state)
        return state

    yield factory
    for state in started:
        stop_git_server(state)
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)
