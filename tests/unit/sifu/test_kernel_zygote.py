"""The kernel broker's zygote (sifu/kernel_zygote.py): what a forked kernel's environment gains, a child refused
before its kernel starts, a zygote that died, and when the broker starts and stops it."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest
from jupyter_client.connect import write_connection_file

from sifu import kernel_broker
from sifu.kernel_zygote import Zygote, ZygoteGone, startup_locale
from sifu.uids import UID_BASE

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the zygote runs as root (it becomes each student)")


def test_under_the_c_locale_a_kernel_gets_the_utf8_ctype_an_interpreter_start_would_add():
    assert startup_locale({}) == startup_locale({"LANG": "C"}) == startup_locale({"LC_CTYPE": "POSIX"}) == {"LC_CTYPE": "C.UTF-8"}
    assert startup_locale({"LANG": "en_US.UTF-8"}) == startup_locale({"LC_ALL": "C"}) == {}


@as_root
def test_a_child_that_cannot_build_its_walls_says_why_and_the_zygote_forks_the_next(tmp_path):
    zygote = Zygote(sys.executable, kernel_broker.zygote_env())
    try:
        for _ in range(2):
            with pytest.raises(OSError) as refused:
                zygote.start({"uid": 200_001, "cwd": str(tmp_path / "gone"), "connection_file": "x", "env": {}})
            assert refused.value.strerror == "No such file or directory"
        assert zygote.alive
    finally:
        zygote.stop()


@as_root
def test_once_the_zygote_is_gone_starting_says_so(tmp_path):
    zygote = Zygote(sys.executable, kernel_broker.zygote_env())
    zygote.process.kill()
    zygote.process.wait()
    with pytest.raises(ZygoteGone):
        zygote.start({"uid": 200_001, "cwd": str(tmp_path), "connection_file": "x", "env": {}})
    zygote.stop()


# The broker kills every process of a kernel's uid when it is released: one no other test's kernel runs as.
STUDENT_UID = UID_BASE + 900_000_000 + os.getpid()


@contextmanager
def sifu_answering_uids(uid: int) -> Iterator[str]:
    """Stands in for Sifu's /internal/student-uids/<name> (the broker checks its port is the --sifu-user's: root)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"uid": uid}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def ask(path: Path, request: dict) -> dict:
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))
        client.sendall(json.dumps(request).encode() + b"\n")
        return json.loads(client.makefile().readline())


def parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def zygotes_of(broker: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if parent_of(int(entry)) == broker and b"sifu.kernel_zygote" in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except (OSError, StopIteration):
            continue  # gone meanwhile
    return found


def wait_for(condition: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60  # bounds a hang; the condition is the assertion
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}; the broker said:\n{log.read_text()}")
        time.sleep(0.1)


@as_root
def test_the_broker_starts_the_zygote_with_the_first_kernel_and_stops_it_once_kernels_are_gone():
    """Issue 14: an instance with no student holds no zygote. The broker starts with none; a kernel start starts
    it and forks the kernel from it; once no kernel has run for --zygote-idle-seconds it is gone, and the next
    kernel is forked from a new one."""
    work = Path(tempfile.mkdtemp(prefix=f"{os.environ.get('SIFU_TESTBED_PREFIX', 'sifu')}-zygote-", dir="/tmp"))
    work.chmod(0o711)  # the kernel, as the student, reaches its connection file below
    folder = work / "notebooks" / "users" / "alice"
    folder.mkdir(parents=True)
    sock, log = work / "run" / "broker.sock", work / "broker.log"

    def start_kernel(name: str) -> tuple[int, int]:
        """The kernel's pid and its parent's, read as soon as the broker answers. The kernel need not live on:
        where the test's Python is under /root (0700), the student's uid cannot import what the zygote did not
        (ipykernel's `import pdb` at start), and it ends a moment later; in the image the venv is readable."""
        prepared = ask(sock, {"op": "prepare", "cwd": str(folder)})
        connection_file, _ = write_connection_file(str(Path(prepared["kernel_dir"]) / f"kernel-{name}.json"), ip="127.0.0.1")
        started = ask(sock, {"op": "start", "cwd": str(folder), "connection_file": connection_file,
                             "env": {"PATH": os.environ["PATH"]}})
        assert started.get("ok") and started["uid"] == STUDENT_UID, started
        try:
            return started["pid"], parent_of(started["pid"])
        except (OSError, StopIteration):
            pytest.fail(f"kernel {name} ended before its parent could be read; the broker said:\n{log.read_text()}")

    with sifu_answering_uids(STUDENT_UID) as sifu_url, log.open("w") as output:
        broker = subprocess.Popen(
            [sys.executable, "-m", "sifu.kernel_broker", "--socket", str(sock), "--notebook-root", str(work / "notebooks"),
             "--kernel-dir", str(work / "kernels"), "--sifu-url", sifu_url, "--sifu-user", "root", "--jupyter-user", "root",
             "--zygote-idle-seconds", "1"], stdout=output, stderr=output)
        try:
            wait_for(lambda: "Jupyter (root) asks on" in log.read_text(), "the broker did not start", log)
            assert ask(sock, {"op": "prepare", "cwd": str(folder)})["uid"] == STUDENT_UID
            assert zygotes_of(broker.pid) == []

            first, parent = start_kernel("first")
            [zygote] = zygotes_of(broker.pid)
            assert parent == zygote
            assert ask(sock, {"op": "release", "pid": first}).get("ok")
            wait_for(lambda: zygotes_of(broker.pid) == [], "the idle zygote was not stopped", log)

            second, parent = start_kernel("second")
            [new_zygote] = zygotes_of(broker.pid)
            assert new_zygote != zygote and parent == new_zygote
            assert ask(sock, {"op": "release", "pid": second}).get("ok")
        finally:
            broker.terminate()
            broker.wait()
            shutil.rmtree(work, ignore_errors=True)
