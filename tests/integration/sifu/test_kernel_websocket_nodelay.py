"""The kernel websocket's server-side socket has TCP_NODELAY (sifu/kernel_latency.py).

Without it, every frame after the first of a cell's reply waited for the client's delayed ACK (~40 ms a
cell; bench/kernel_roundtrip.py). The test reads the option off Jupyter's own socket for our connection:
pidfd_getfd copies that descriptor out of the Jupyter process (a child of this one), and getsockopt reads
it. An outcome, not a timing.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.integration.sifu.helpers import COURSE, prepare_copy
from tests.support.jupyter_client import JupyterSession

pytestmark = pytest.mark.integration

SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture
FILE = "nodelay.ipynb"


def copy_descriptor(pid: int, fd: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copied = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copied < 0:
            raise OSError(ctypes.get_errno(), f"pidfd_getfd({pid}, {fd})")
        return copied
    finally:
        os.close(pidfd)


def server_socket_nodelay(pid: int, client_address: tuple[str, int]) -> int:
    """TCP_NODELAY of the socket in process `pid` whose peer is `client_address`."""
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if not os.readlink(entry).startswith("socket:"):
                continue
        except OSError:
            continue
        with socket.socket(fileno=copy_descriptor(pid, int(entry.name))) as sock:
            if sock.family != socket.AF_INET or sock.type != socket.SOCK_STREAM:
                continue
            try:
                peer = sock.getpeername()
            except OSError:
                continue  # a listening socket
            if peer == client_address:
                return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    raise AssertionError(f"no socket in process {pid} is connected to {client_address}")


def test_the_kernel_websocket_has_tcp_nodelay(sifu_stack):
    import websocket

    token = sifu_stack.token("alice")
    prepare_copy(sifu_stack.sifu.url, token, "alice", COURSE, FILE)
    alice = JupyterSession(sifu_stack.jupyter.url, sifu_stack.identity_cookie("alice", token=token))
    try:
        assert alice.prime_xsrf(f"/notebooks/users/alice/{quote(COURSE)}/{FILE}").status_code == 200
        session = alice.start_session(f"users/alice/{COURSE}/{FILE}")
        assert session.status_code == 201, session.text
        kernel_id = session.json()["kernel"]["id"]
        netloc = urlsplit(sifu_stack.jupyter.url).netloc
        ws = websocket.create_connection(f"ws://{netloc}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}",
                                         header=[f"Cookie: {alice.cookie_header()}"], origin=f"http://{netloc}", timeout=60)
        try:
            # A reply proves the handler's open() (where the option is set) has run.
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({"header": {"msg_id": msg_id, "username": "alice", "session": uuid.uuid4().hex,
                                           "msg_type": "kernel_info_request", "version": "5.3", "date": ""},
                                "parent_header": {}, "metadata": {}, "content": {}, "channel": "shell", "buffers": []}))
            while json.loads(ws.recv()).get("parent_header", {}).get("msg_id") != msg_id:
                pass
            assert server_socket_nodelay(sifu_stack.jupyter.proc.popen.pid, ws.sock.getsockname()) == 1
        finally:
            ws.close()
        alice.request("DELETE", f"/api/sessions/{session.json()['id']}")
    finally:
        alice.close()
