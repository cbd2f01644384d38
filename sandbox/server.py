"""The emulated AWS as a process: ``MotoServer`` starts ``python -m sandbox.serve`` on a free port, waits until it
answers, resets it, talks to its control endpoint, and stops it by PID.

``env()`` gives the variables that point boto3 and the AWS CLI at it (AWS_ENDPOINT_URL, fake credentials, the
region); moto accepts any credentials.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from sandbox import control, processes

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_ID = control.DEFAULT_ACCOUNT
REGION = control.DEFAULT_REGION
# moto accepts any credentials; these are the conventional fake ones.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class MotoServer:
    """A moto server process with the sandbox's extensions loaded."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None,
                 extra_env: dict[str, str] | None = None):
        self.extra_env = extra_env or {}
        self.host = host
        self.port = port or processes.free_port(host)
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
        # IAM's AWS-managed policies are only there to attach when moto loads them at start.
        env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "PYTHONPATH": str(REPO_ROOT),
               **self.extra_env}
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.serve", "--host", self.host, "--port", str(self.port)],
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
                self.control()  # answers once the extensions are installed and the server listens
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process:
            processes.stop(self.process)
        self.process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- moto-api ------------------------------------------------------------------------------------
    def _post(self, path: str, payload: dict[str, Any] | None = None, timeout: float = 10) -> bytes:
        data = json.dumps(payload).encode() if payload is not None else b""
        req = urllib.request.Request(self.endpoint + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()

    def reset(self) -> None:
        """Forget every resource in every service, and everything set through the control endpoint."""
        # moto reloads IAM's managed policies on reset: seconds of CPU, far more on a loaded machine.
        self._post("/moto-api/reset", timeout=120)

    def control(self, **settings: Any) -> dict[str, Any]:
        """Talk to the control endpoint (sandbox/control.py); starting or stopping a fleet takes a while."""
        return json.loads(self._post(control.PATH, settings, timeout=300 if "fleet" in settings else 10))

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
        when terminated): point them at real SSH hosts so converge reaches "the instances"."""
        self.control(region=region, account_id=account_id, instance_addresses=list(addresses))

    def use_registry(self, registry: Any, region: str = REGION, account_id: str = ACCOUNT_ID) -> None:
        """ECR's login and repository URIs name ``registry`` (a sandbox.registry.Registry) until the next reset."""
        self.control(region=region, account_id=account_id,
                     registry={"endpoint": registry.url, "username": registry.username,
                               "password": registry.password})

    def client(self, service: str, region: str = REGION) -> Any:
        """A plain boto3 client on this server (cached: loading service models is the slow part)."""
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                                              **{k.lower(): v for k, v in FAKE_CREDENTIALS.items()})
        return self._clients[key]
