"""Sifu's uvicorn workers: forked from a master that has already imported the app, and tied to its life.

uvicorn's own supervisor (uvicorn.supervisors.Multiprocess) keeps doing everything it does (restarts a
dead or hung worker, SIGHUP, SIGTTIN/SIGTTOU, stops when a worker cannot start); two things change:

- Preload and fork. uvicorn starts every worker with multiprocessing's "spawn": a fresh interpreter that
  imports FastAPI, pydantic and SQLAlchemy all over again (about 0.6 s of CPU each, on the 2 cores that
  Jupyter needs at the same moment). Here the master imports sifu.app once and the workers are forked
  from it, sharing those modules copy-on-write; each worker still builds its own app (create_app: its
  own database engine and HTTP client), since nothing that holds a connection may cross a fork.
- Workers die with their master. If the master is SIGKILLed (OOM killer, `kill -9`), spawned workers
  lived on, reparented to PID 1 and still holding the listening socket, so every restart by
  supervisord failed with "Address already in use". Each worker asks the kernel for SIGTERM when its
  parent dies (prctl PR_SET_PDEATHSIG, Linux); uvicorn's graceful shutdown then closes the listening
  socket at once and ends in-flight requests within timeout_graceful_shutdown.

uvicorn has no public hook for the worker process class, so `use_forked_workers` swaps the
multiprocessing context in uvicorn._subprocess; uvicorn is pinned (constraints.txt), and a changed
uvicorn is refused with a clear error rather than silently falling back to spawn.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.context
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_DEATH_SIGNAL = signal.SIGTERM

# Handlers the worker must not inherit from uvicorn's master (it queues these for its own loop).
_MASTER_SIGNALS = tuple(getattr(signal, f"SIG{name}") for name in
                        ("INT", "TERM", "HUP", "QUIT", "TTIN", "TTOU", "USR1", "USR2", "WINCH") if hasattr(signal, f"SIG{name}"))


class WorkerStartError(RuntimeError):
    """The worker cannot be tied to its master's life."""


def die_with_parent(parent_pid: int, sig: int = PARENT_DEATH_SIGNAL) -> bool:
    """Ask the kernel to send `sig` to this process when its parent ends; False where that is unsupported.

    If the parent is already gone (it died between fork and here), the signal is sent now.
    """
    if not sys.platform.startswith("linux"):
        return False  # macOS process-mode local runs: no PR_SET_PDEATHSIG; nothing else differs
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise WorkerStartError(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(errno)}")
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
    return True


_fork = multiprocessing.get_context("fork")


class ForkedWorker(_fork.Process):  # type: ignore[name-defined,misc]
    """A uvicorn worker forked from the master; it ends when the master ends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.master_pid = os.getpid()

    def run(self) -> None:
        # A fresh interpreter's dispositions, as spawn gave: SIGTERM before uvicorn installs its own
        # handlers must end the worker, not land in the master's signal queue (a copy, in this process).
        for sig in _MASTER_SIGNALS:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        die_with_parent(self.master_pid)
        super().run()


class ForkedWorkerContext:
    """Stands in for the multiprocessing context uvicorn starts workers with: `Process` forks a ForkedWorker."""

    Process = ForkedWorker


def use_forked_workers() -> None:
    """Preload the app in this (master) process and make uvicorn fork its workers from it."""
    import uvicorn._subprocess as uvicorn_subprocess

    current = getattr(uvicorn_subprocess, "spawn", None)
    if not isinstance(current, (multiprocessing.context.SpawnContext, ForkedWorkerContext)):
        raise WorkerStartError(
            "this uvicorn version no longer starts workers through uvicorn._subprocess.spawn; "
            "sifu/workers.py needs updating for it (or pin uvicorn as constraints.txt does)")
    import sifu.app  # noqa: F401  the preload: FastAPI, pydantic, SQLAlchemy and Sifu, once for all workers

    uvicorn_subprocess.spawn = ForkedWorkerContext()
