"""Emulated AWS for tests (and `inv sandbox`): moto in server mode plus our faithful Elastic Beanstalk.

``MotoServer`` starts ``python -m tests.support.moto_eb_server`` as a subprocess on a random free port,
waits until it answers, and stops it by PID. Fixtures:

- ``moto_server`` (session): one server for the whole run.
- ``aws`` (function): resets the server (``POST /moto-api/reset``, which also wipes the EB extension's state)
  and points boto3 at it through environment variables (AWS_ENDPOINT_URL, fake credentials, region).
  Yields the ``MotoServer``; use ``aws.client("eb")``-style helpers or plain boto3.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
# moto accepts any credentials; these are the conventional fake ones.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """A moto server subprocess with the Elastic Beanstalk extension loaded."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None,
                 extra_env: dict[str, str] | None = None):
        self.extra_env = extra_env or {}
        self.host = host
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._clients: dict[tuple[str, str], Any] = {}

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self, region: str = REGION) -> dict[str, str]:
        """Environment variables that point boto3 and the AWS CLI at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            **FAKE_CREDENTIALS,
        }

    def start(self, timeout: float = 30.0) -> MotoServer:
        env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "PYTHONPATH": str(REPO_ROOT),
               **self.extra_env}
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.moto_eb_server", "--host", self.host, "--port", str(self.port)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        if log is not subprocess.DEVNULL:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited early with code {self.process.returncode}"
                                   + (f"; see {self.log_path}" if self.log_path else ""))
            try:
                self.control()  # answers once the extension is installed and the server listens
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- moto-api ------------------------------------------------------------------------------------
    def _post(self, path: str, payload: dict[str, Any] | None = None) -> bytes:
        data = json.dumps(payload).encode() if payload is not None else b""
        req = urllib.request.Request(self.endpoint + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read()

    def reset(self) -> None:
        """Forget every resource in every service, including Elastic Beanstalk's."""
        self._post("/moto-api/reset")

    def control(self, **settings: Any) -> dict[str, Any]:
        """Talk to the EB control endpoint (see tests/support/moto_eb.py:control)."""
        return json.loads(self._post("/moto-api/elasticbeanstalk/control", settings))

    def fail_next_deploy(self, environment_name: str | None = None, message: str = "Injected deployment failure",
                         region: str = REGION, account_id: str = ACCOUNT_ID) -> None:
        """Make the next deployment of a new version (to ``environment_name``, or any) fail and roll back."""
        self.control(region=region, account_id=account_id,
                     fail_next_deploy={"environment_name": environment_name, "message": message})

    def set_polls_per_stage(self, polls: int, region: str = REGION, account_id: str = ACCOUNT_ID) -> None:
        """How many describe calls each lifecycle stage takes (default 1)."""
        self.control(region=region, account_id=account_id, polls_per_stage=polls)

    def give_instances_addresses(self, addresses: list[str], region: str = REGION,
                                 account_id: str = ACCOUNT_ID) -> None:
        """Instances EB launches from now on get these public IPs (one each, in order; returned to the pool
        when terminated): point them at real SSH test hosts so converge reaches "the instances"."""
        self.control(region=region, account_id=account_id, instance_addresses=list(addresses))

    def client(self, service: str, region: str = REGION) -> Any:
        """A plain boto3 client on this server (cached: loading service models is the slow part)."""
        key = (service, region)
        if key not in self._clients:
            import boto3

            self._clients[key] = boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                                              aws_access_key_id="testing", aws_secret_access_key="testing")
        return self._clients[key]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server (with the faithful Elastic Beanstalk) for the whole test session."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = MotoServer(log_path=log).start()
    try:
        yield server
    finally:
        server.stop()


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
