"""`inv sandbox` as an operator uses it: start it, export what it prints, plan against it, stop it with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from deployer import REPO_ROOT

pytestmark = pytest.mark.integration
INV = str(Path(sys.executable).parent / "inv")


def test_sandbox_prints_env_that_a_plan_runs_against_and_stops_on_ctrl_c(tmp_path, docker_engine):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EDX_", "RDS_", "DEPLOY__", "EFS_"))}
    environ.update(docker_engine.env())  # the image steps ask this dockerd
    sandbox = subprocess.Popen([INV, "--search-root", str(REPO_ROOT), "sandbox"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=environ, cwd=tmp_path)
    try:
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 60
        for line in sandbox.stdout:
            if line.startswith("export "):
                name, _, value = line[len("export "):].strip().partition("=")
                exports[name] = value
            if line.startswith("then:") or time.monotonic() > deadline:
                break
        assert {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "DEPLOY__EB__KEY_NAME"} <= set(exports), exports
        assert not any(name.startswith("SIFU_") for name in exports), exports  # nothing but AWS's own answers
        # The registry is where ECR's login says, as in AWS.
        ecr = boto3.client("ecr", endpoint_url=exports["AWS_ENDPOINT_URL"], region_name=exports["AWS_REGION"],
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        registry = ecr.get_authorization_token()["authorizationData"][0]["proxyEndpoint"].split("://", 1)[1]
        assert registry.startswith("127.0.0.1:"), registry
        plan = subprocess.run([INV, "--search-root", str(REPO_ROOT), "plan", "--json"], capture_output=True,
                              text=True, env={**environ, **exports, "EDX_OAUTH2_CLIENT_SECRET": "s3cret"}, cwd=tmp_path,
                              timeout=120)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        data = json.loads(plan.stdout)
        assert data["aws_calls"]["read"] > 0 and data["aws_calls"]["mutate"] == 0 and data["result"] == "changes"
        login = next(s for s in data["steps"] if s["number"] == 5)
        assert login["status"] == "ok" and f"{registry} as AWS" in login["summary"]
    finally:
        sandbox.send_signal(signal.SIGINT)
        rest, _ = sandbox.communicate(timeout=30)
    assert sandbox.returncode == 0 and "sandbox stopped" in rest
    for endpoint in (exports["AWS_ENDPOINT_URL"].rsplit("/", 1)[-1], registry):
        host, port = endpoint.split(":")
        with pytest.raises(OSError):  # both stopped
            socket.create_connection((host, int(port)), timeout=2).close()
