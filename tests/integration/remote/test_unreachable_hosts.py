"""A host that cannot be reached is one line in the per-host table, never a library traceback.

Real paramiko against local listeners: a port where nothing listens, and an HTTP server where sshd should be
(the SSH handshake fails inside paramiko's transport thread, which logs a traceback unless we keep it quiet).
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading

import pytest

from deployer import REPO_ROOT
from tests.support.processes import free_port

pytestmark = pytest.mark.integration


def test_unreachable_hosts_are_one_line_each_and_user_at_host_port_works():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    not_ssh = f"root@127.0.0.1:{server.server_address[1]}"
    closed = f"127.0.0.1:{free_port()}"
    try:
        result = subprocess.run([sys.executable, "-m", "invoke", "converge", "--hosts", f"{not_ssh},{closed}"],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "EFS_ID": "fs-12345678"})
    finally:
        server.shutdown()
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    rows = [line for line in result.stdout.splitlines() if line.startswith((not_ssh, closed))]
    assert [row.split()[:2] for row in rows[:2]] == [[not_ssh, "failed"], [closed, "failed"]], output
    assert "SSH protocol banner" in output and "unreachable" in output, output
