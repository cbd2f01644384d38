"""`./inv deploy --yes` as an operator runs it, in a subprocess, on the emulated AWS with everything real behind it:
a private dockerd building the image, a password-protected registry behind the emulated ECR, an SSH test
host as the environment's instance, and a real Sifu and Jupyter for the smoke check (tests/support/deploy_bed.py).
Interrupted with a real SIGKILL after each step, a re-run converges to the same resources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deployer import REPO_ROOT
from tests.integration.aws.test_deploy_eb import _resource_counts
from tests.support.hosts import DEPLOY_HOST

pytestmark = pytest.mark.integration
INV = str(Path(sys.executable).parent / "inv")
ENV = "sifu-notebooks-env"


@pytest.fixture
def cli_env(deploy_site, app_image, docker_engine, remote_bed, tmp_path):
    """The deploy's whole environment: emulated AWS (inherited; its ECR names the registry), site config, image
    config, dockerd."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDX_", "RDS_", "DEPLOY__", "EFS_"))}
    env.update(deploy_site)
    env.update(app_image.environ)
    env.update(docker_engine.env())
    env.update(DEPLOY_ANSWERS_FILE=str(tmp_path / "answers.yml"))
    remote_bed.deploy_bundle(remote_bed.hosts[DEPLOY_HOST], environ=env)  # the image's ports are the deploy's
    return env


def inv(env, *args, timeout=300):
    return subprocess.run([INV, "--search-root", str(REPO_ROOT), *args], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, stdin=subprocess.DEVNULL, timeout=timeout)


def test_deploy_creates_everything_then_a_second_deploy_changes_nothing(aws, cli_env, registry, app_image):
    pushed_before = app_image.plan.final.tag in registry.tags("sifu-notebooks")
    first = inv(cli_env, "deploy", "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "Successfully launched environment" in out  # EB's events, streamed
    assert "[14e] Converge the instances" in out and "[14f] Smoke check" in out
    assert ("pushed 0 bytes" in out.splitlines()[-1]) == pushed_before  # pushed unless an earlier test did
    env = aws.client("elasticbeanstalk").describe_environments(EnvironmentNames=[ENV])["Environments"][0]
    assert (env["Status"], env["Health"]) == ("Ready", "Green")
    assert app_image.plan.final.tag in registry.tags("sifu-notebooks")

    second = inv(cli_env, "deploy", "--yes", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    data = json.loads(second.stdout)
    assert data["result"] == "no changes", [(s["number"], s["status"], s["summary"]) for s in data["steps"]]
    assert data["aws_calls"]["mutate"] == 0 and data["bytes_pushed"] == 0


def _label(aws) -> str:
    return aws.client("elasticbeanstalk").describe_environments(EnvironmentNames=[ENV])["Environments"][0]["VersionLabel"]


def test_an_injected_failure_exits_non_zero_with_eb_errors_and_rollback_returns_to_the_previous_label(aws, cli_env):
    # nginx's read timeout is in the converge hook, so each value is a new bundle, hence a new version (the image
    # stays the same).
    done = inv({**cli_env, "DEPLOY__WEB__READ_TIMEOUT": "3600"}, "deploy", "--yes")
    print(done.stdout)
    assert done.returncode == 0
    first = _label(aws)
    assert inv({**cli_env, "DEPLOY__WEB__READ_TIMEOUT": "3601"}, "deploy", "--yes").returncode == 0
    second = _label(aws)
    assert second != first
    aws.fail_next_deploy(ENV, message="sifu: cannot import name 'app'")
    failed = inv({**cli_env, "DEPLOY__WEB__READ_TIMEOUT": "3602"}, "deploy", "--yes")
    assert failed.returncode == 1
    assert "sifu: cannot import name 'app'" in failed.stdout and "failed at step 14d" in failed.stdout
    assert "ERROR" in failed.stdout  # EB's error events, streamed
    assert _label(aws) == second  # EB rolled the failed version back
    result = inv(cli_env, "rollback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _label(aws) == first


# Kill points: the line after which the deploy is killed (a step's result line, or an EB event mid-wait).
# Every step that changes something; by default a spread of them (each costs two deploys), all with
# SIFU_TEST_KILL_EVERY_STEP=1.
KILL_AFTER_ALL = ["[  3]", "[  5]", "[  7]", "[  8]", "[  9] EB CLI", "[14a] EFS", "[14a] Secrets", "[ 13]", "[14b]",
                  "[14c]", "createEnvironment is starting", "[14d]", "[14e]"]
KILL_AFTER = (KILL_AFTER_ALL if os.environ.get("SIFU_TEST_KILL_EVERY_STEP") else
              ["[  3]", "[  8]", "[14a] EFS", "[14b]", "createEnvironment is starting", "[14e]"])


def _deploy_killed_after(env, marker: str) -> str:
    proc = subprocess.Popen([INV, "--search-root", str(REPO_ROOT), "deploy", "--yes"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    seen = []
    deadline = time.monotonic() + 300
    try:
        for line in proc.stdout:
            seen.append(line)
            if marker in line or time.monotonic() > deadline:
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a real SIGKILL: no cleanup, no finally blocks in the deploy
        proc.communicate()
    assert any(marker in line for line in seen), (marker, "".join(seen))
    return "".join(seen)


def test_killed_after_each_step_a_rerun_converges_to_the_same_resources(aws, cli_env, remote_bed, deploy_site,
                                                                         sifu_stack, registry, tmp_path):
    from tests.support.deploy_bed import prepare_site

    assert inv(cli_env, "deploy", "--yes").returncode == 0
    clean = _resource_counts(aws)
    host = remote_bed.hosts[DEPLOY_HOST]
    for marker in KILL_AFTER:
        aws.reset()
        host.reset()
        cli_env.update(prepare_site(aws, remote_bed, [host], sifu_stack, registry, tmp_path))
        remote_bed.deploy_bundle(host, environ=cli_env)
        _deploy_killed_after(cli_env, marker)
        resumed = inv(cli_env, "deploy", "--yes")
        assert resumed.returncode == 0, (marker, resumed.stdout + resumed.stderr)
        assert _resource_counts(aws) == clean, marker
