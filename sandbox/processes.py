"""Start and stop real processes (the sandbox's servers, and the tests'): free ports, readiness waits, reaping by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a process (and its group when it leads one) and reap it."""
    if process.poll() is not None:
        return
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def first_child(process: subprocess.Popen) -> int:
    """The pid of process's first child, or 0 while it has none (e.g. PID 1 of a namespace `unshare --fork` made)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    found = children.read_text().split() if children.exists() else []
    return int(found[0]) if found else 0


def end_pid_namespace(init_pid: int, launcher: subprocess.Popen | None) -> None:
    """SIGKILL a PID namespace's PID 1 (the kernel then ends every process in it) and reap what launched it."""
    if init_pid:
        try:
            os.kill(init_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if launcher:
        try:
            launcher.wait(15)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait(5)


@contextmanager
def running(args: list[str], port: int | None = None, log: Path | None = None, env: dict | None = None,
            cwd: str | Path | None = None, timeout: float = 20.0):
    """Run a process for the duration of a with-block; wait until its port accepts connections."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    try:
        if port is not None:
            wait_for_port(port, process=process, timeout=timeout)
        yield process
    finally:
        stop(process)
        if log:
            out.close()
