"""The emulated AWS (sandbox/server.py: moto in server mode plus the sandbox's Elastic Beanstalk and ECR) as
fixtures:

- ``moto_server`` (session): one server for the whole run.
- ``aws`` (function): resets the server (``POST /moto-api/reset``, which also wipes everything the control
  endpoint set) and points boto3 at it through environment variables (AWS_ENDPOINT_URL, fake credentials,
  region). Yields the ``MotoServer``; use ``aws.client("ec2")``-style helpers or plain boto3.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sandbox.server import MotoServer


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server (with the faithful Elastic Beanstalk) for the whole test session."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with MotoServer(log_path=log) as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A fresh emulated AWS account; boto3 (and the `aws` CLI via os.environ) point at it."""
    moto_server.reset()
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # No stray ~/.aws files may change what the code under test sees.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    return moto_server
