"""Sifu's HTTP workers when `sifu.workers` is more than one (sifu/serving.py): gunicorn's arbiter with uvicorn
workers (the `uvicorn-worker` package, which uvicorn's docs name since `uvicorn.workers` was deprecated in 0.30),
the app preloaded in the master.

- Preload and fork (gunicorn's `preload_app`). The master imports sifu.app once (FastAPI, pydantic,
  SQLAlchemy: about 0.6 s of CPU, on the 2 cores Jupyter needs at the same moment) and forks the workers,
  which share those modules copy-on-write. What gunicorn preloads is the factory `create_app`, not an app:
  each worker calls it (uvicorn's `factory`), so its database engine and HTTP client are its own, since
  nothing that holds a connection may cross a fork.
- gunicorn's arbiter supervises: it restarts a dead or hung worker, stops when a worker cannot boot, and
  ends the workers gracefully on SIGTERM (supervisord's stop signal).
- Workers die with their master. If the master is SIGKILLed (OOM killer, `kill -9`), forked workers would
  live on, reparented to PID 1 and still holding the listening socket, so every restart by supervisord
  would fail with "Address already in use". In gunicorn's `post_fork` hook each worker asks the kernel for
  SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG, Linux); uvicorn's graceful shutdown then closes the
  socket at once and ends in-flight requests within GRACEFUL_SECONDS.
- Access lines go through sifu.serving.RedactTokens: serve URLs carry `?Authorization=Bearer T`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any, Callable

from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

from sifu.serving import GRACEFUL_SECONDS, KEEPALIVE_SECONDS, UVICORN_OPTIONS, redact_access_log

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_DEATH_SIGNAL = signal.SIGTERM


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


class SifuWorker(UvicornWorker):
    """uvicorn under gunicorn with the options of the one-process path: the preloaded object is the app factory."""

    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, **UVICORN_OPTIONS}


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn hook, in the new worker: end with the master."""
    die_with_parent(server.pid)


def post_worker_init(worker: Any) -> None:
    """gunicorn hook: uvicorn's access logger (wired to gunicorn's handlers by the worker) redacts tokens."""
    redact_access_log()


class SifuServer(BaseApplication):
    """gunicorn's documented custom application: options from `python -m sifu`, no config file read."""

    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]):
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[[], Any]:
        return self.factory


def server_options(host: str, port: int, workers: int) -> dict[str, Any]:
    return {
        "bind": [f"{host}:{port}"],
        "workers": workers,
        "worker_class": "sifu.workers.SifuWorker",
        "preload_app": True,
        "graceful_timeout": GRACEFUL_SECONDS,
        "keepalive": KEEPALIVE_SECONDS,
        "accesslog": "-",
        "errorlog": "-",
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "proc_name": "sifu",
    }


def serve_with_workers(factory: Callable[[], Any], host: str, port: int, workers: int) -> None:
    """Serve until SIGTERM: the app factory preloaded here, `workers` workers forked from this process."""
    SifuServer(factory, server_options(host, port, workers)).run()
