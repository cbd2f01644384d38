"""The tests' private Docker engine (sandbox/docker_engine.py): one fresh dockerd per test session."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from sandbox.docker_engine import DEBIAN_DOCKER_CLI, DOCKERD, DockerEngine, start_engine, stop_engine  # noqa: F401

@pytest.fixture(scope="session")
def docker_engine():
    """A fresh dockerd for this test session (host network only), stopped at the end."""
    # SIFU_TEST_DOCKER_PREFIX: engineers sharing a machine tell their engines' directories apart.
    root = Path(tempfile.mkdtemp(prefix=os.environ.get("SIFU_TEST_DOCKER_PREFIX", "sifu-dk-"), dir="/tmp"))
    engine = start_engine(root)
    try:
        yield engine
    finally:
        stop_engine(engine)
        # Every image the session built is under root: deleting it took seconds to tens of seconds, charged to the
        # session's last test. Nothing waits for it, so it goes on after the session; --one-file-system keeps
        # it out of anything dockerd left mounted there.
        subprocess.Popen(["rm", "-rf", "--one-file-system", str(root)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.fixture(scope="session")
def docker_client(docker_engine):
    """The docker SDK client for the session's engine."""
    client = docker_engine.client()
    yield client
    client.close()
