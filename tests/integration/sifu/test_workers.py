"""How Sifu serves (sifu/serving.py, sifu/workers.py), on real processes. With one worker: one process, which
ends gracefully on SIGTERM. With more: uvicorn workers forked from gunicorn's preloaded master, supervised by
it, and gone when the master is SIGKILLed so the port can be bound again. Both redact tokens in access lines."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support.sifu_stack import base_env, start_sifu

pytestmark = pytest.mark.integration


def sifu_env(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "notebooks"
    root.mkdir()
    return base_env(tmp_path) | {
        "EDX_HOSTNAME": "127.0.0.1:9",  # never called here
        "EDX_OAUTH2_CLIENT_ID": "sifu-workers-test",
        "EDX_OAUTH2_CLIENT_SECRET": secrets.token_hex(16),
        "EDX_OAUTH2_CLIENT_REDIRECT_URI": "http://127.0.0.1:9/callback",
        "SIFU_NOTEBOOK_ROOT": str(root),
        "SIFU_SECRET_KEY": secrets.token_hex(32),
        "SIFU_STATE_DIR": str(tmp_path / "state"),
        "SIFU_JUPYTER_URL": "http://127.0.0.1:9",
    }


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[1] == str(pid):
                found.add(int(entry.name))
    return found


def children_if(pid: int, condition) -> set[int] | None:
    found = children(pid)
    return found if condition(found) else None


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def port_is_free(port: int) -> bool:
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
    try:
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


@pytest.fixture
def two_workers(tmp_path):
    sifu = start_sifu(tmp_path, sifu_env(tmp_path), workers=2)
    master = sifu.proc.popen.pid
    try:
        workers = wait_for(lambda: children_if(master, lambda found: len(found) >= 2), 20, "two workers")
        yield sifu, master, workers
    finally:
        sifu.stop()
        try:
            os.killpg(master, signal.SIGKILL)  # anything left of the group if a test failed
        except ProcessLookupError:
            pass


def test_workers_die_with_a_sigkilled_master_and_free_the_port(two_workers, tmp_path):
    sifu, master, workers = two_workers
    port = int(sifu.url.rsplit(":", 1)[1])
    os.kill(master, signal.SIGKILL)
    sifu.proc.popen.wait(10)
    wait_for(lambda: not any(alive(pid) for pid in workers), 15, f"workers {workers} to end after their master")
    assert port_is_free(port)
    again = start_sifu(tmp_path, sifu.env, port=port, workers=2, name="sifu-again")  # what supervisord does
    try:
        assert httpx.get(f"{again.url}/health", timeout=5).json() == {"status": "ok"}
    finally:
        again.stop()


def test_the_master_still_replaces_a_dead_worker(two_workers):
    sifu, master, workers = two_workers
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(lambda: children_if(master, lambda now: len(now) == 2 and victim not in now), 20,
                        "gunicorn's master to start a new worker")
    assert len(replaced - workers) == 1
    assert httpx.get(f"{sifu.url}/health", timeout=5).status_code == 200


def test_workers_are_forked_from_the_preloaded_master(two_workers):
    """Spawned workers would run another command line (`python -c 'from multiprocessing.spawn ...'`) and
    import everything again."""
    _, master, workers = two_workers
    assert len(workers) == 2
    master_cmdline = Path(f"/proc/{master}/cmdline").read_bytes()
    for pid in workers:
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == master_cmdline


@pytest.fixture
def one_worker(tmp_path):
    sifu = start_sifu(tmp_path, sifu_env(tmp_path), workers=1)
    try:
        yield sifu
    finally:
        sifu.stop()


def test_one_worker_is_served_by_one_process_that_ends_on_sigterm_and_frees_the_port(one_worker, tmp_path):
    pid = one_worker.proc.popen.pid
    assert httpx.get(f"{one_worker.url}/health", timeout=5).json() == {"status": "ok"}
    assert children(pid) == set()  # no master over the worker: supervisord supervises
    os.kill(pid, signal.SIGTERM)  # supervisord's stop signal
    # uvicorn shuts down gracefully, then ends by the signal it got (as if it had not caught it).
    assert one_worker.proc.popen.wait(10) == -signal.SIGTERM
    assert "Finished server process" in one_worker.proc.log()
    assert port_is_free(int(one_worker.url.rsplit(":", 1)[1]))


@pytest.mark.parametrize("workers", [1, 2])
def test_access_log_redacts_tokens_in_query_strings(workers, tmp_path):
    sifu = start_sifu(tmp_path, sifu_env(tmp_path), workers=workers)
    try:
        redacts_tokens(sifu)
    finally:
        sifu.stop()


def redacts_tokens(sifu) -> None:
    token = secrets.token_urlsafe(24)
    httpx.get(f"{sifu.url}/health?Authorization=Bearer%20{token}", timeout=5)
    deadline = time.monotonic() + 5
    while "/health?Authorization=[redacted]" not in sifu.proc.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "/health?Authorization=[redacted]" in sifu.proc.log()
    assert token not in sifu.proc.log()
