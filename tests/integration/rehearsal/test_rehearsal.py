"""The dress rehearsal: `inv sandbox --instances 2`, then `inv deploy --yes`, as an operator runs them.

Everything behind the emulated AWS is real and on this machine (sandbox/fleet.py): two instance hosts (sshd,
nginx, dockerd, a metadata service) that run what the Elastic Beanstalk platform runs from the bundle, HAProxy
as the load balancer generated from the environment's option settings, nfs-ganesha as EFS and PostgreSQL as RDS.
The deploy and the browser run as the sandbox's clients (`client` command): there the environment's CNAME
resolves to the load balancer. Nothing overrides an address or a URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deployer import REPO_ROOT

pytestmark = pytest.mark.integration
INV = str(Path(sys.executable).parent / "inv")
ENV = "sifu-notebooks-env"
PREFIX = os.environ.get("SIFU_REHEARSAL_PREFIX", "sifurh")
SUBNET = os.environ.get("SIFU_REHEARSAL_SUBNET", "10.238.0")


@pytest.fixture(scope="module")
def rehearsal(docker_engine, localbase_image, tmp_path_factory):
    """`inv sandbox --instances 2`: the sandbox's session with a fleet, building with the session's engine."""
    from sandbox.session import running_sandbox

    workdir = tmp_path_factory.mktemp("rehearsal")
    with running_sandbox("us-east-1", instances=2, workdir=workdir, prefix=PREFIX, subnet=SUBNET,
                         engine=docker_engine) as box:
        box.server.control(health_lag_polls=1)
        yield box


@pytest.fixture(scope="module")
def operator_env(rehearsal, app_image, tmp_path_factory):
    """The operator's shell after exporting what the sandbox printed (and sourcing its secrets file), with the
    session's app image's ports, so that the image the suite built already is the one the deploy ships."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDX_", "RDS_", "DEPLOY__", "EFS_", "AWS_"))}
    env.update(rehearsal.env)
    env.update({k: v for k, v in app_image.environ.items() if k.startswith("DEPLOY__")})
    for line in rehearsal.secrets_file.read_text().splitlines():
        name, _, value = line.partition("=")
        env[name] = value
    answers = tmp_path_factory.mktemp("answers") / "answers.yml"
    overrides = answers.with_name("overrides.yml")
    overrides.write_text("eb:\n  poll_interval: 0.5\n")
    env.update(DEPLOY_ANSWERS_FILE=str(answers), OVERRIDES=str(overrides))
    return env


def client(box, env, *argv, timeout=1500):
    return subprocess.run([str(box.client), *argv], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def inv(box, env, *args, timeout=1500):
    return client(box, env, INV, "--search-root", str(REPO_ROOT), *args, timeout=timeout)


@pytest.fixture(scope="module")
def deployed(rehearsal, operator_env):
    first = inv(rehearsal, operator_env, "deploy", "--yes")
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    return first


def test_deploy_passes_every_step_on_two_instances_then_changes_nothing(rehearsal, operator_env, deployed):
    out = deployed.stdout
    for step in ("[1]", "[9]", "[14c]", "[14d]", "[14e] Converge the instances", "[14f] Smoke check"):
        assert step in out, (step, out[-4000:])
    eb = rehearsal.server.client("elasticbeanstalk")
    env = eb.describe_environments(EnvironmentNames=[ENV])["Environments"][0]
    assert (env["Status"], env["Health"]) == ("Ready", "Green")
    instances = eb.describe_environment_resources(EnvironmentName=ENV)["EnvironmentResources"]["Instances"]
    assert len(instances) == 2

    again = inv(rehearsal, operator_env, "deploy", "--yes", "--json")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-3000:]
    report = json.loads(again.stdout)
    assert report["result"] == "no changes", [(s["number"], s["status"], s["summary"]) for s in report["steps"]]
    assert report["aws_calls"]["mutate"] == 0 and report["bytes_pushed"] == 0


def test_the_cname_reaches_both_instances_through_the_load_balancer(rehearsal, operator_env, deployed):
    eb = rehearsal.server.client("elasticbeanstalk")
    cname = eb.describe_environments(EnvironmentNames=[ENV])["Environments"][0]["CNAME"]
    probe = ("import httpx,sys; r=[httpx.get(sys.argv[1], timeout=5) for _ in range(8)]; "
             "print(' '.join(str(x.status_code) for x in r))")
    answered = client(rehearsal, operator_env, sys.executable, "-c", probe, f"http://{cname}:3334/health",
                      timeout=60)
    assert answered.returncode == 0, answered.stderr
    assert set(answered.stdout.split()) == {"200"}


def test_a_dead_instance_is_replaced_through_the_bundle_alone(rehearsal, operator_env, deployed):
    eb = rehearsal.server.client("elasticbeanstalk")
    before = [i["Id"] for i in eb.describe_environment_resources(EnvironmentName=ENV)
              ["EnvironmentResources"]["Instances"]]
    victim = before[0]
    ec2 = rehearsal.server.client("ec2")
    address = ec2.describe_instances(InstanceIds=[victim])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    # The instance dies: every process of its host ends at once (PID 1 of its PID namespace is killed).
    host = f"{PREFIX}-i{address.rsplit('.', 1)[1]}"
    killed = subprocess.run(["bash", "-c", f"kill -9 $(ip netns pids {host})"])
    assert killed.returncode == 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        now = [i["Id"] for i in eb.describe_environment_resources(EnvironmentName=ENV)
               ["EnvironmentResources"]["Instances"]]
        health = eb.describe_environment_health(EnvironmentName=ENV, AttributeNames=["All"])
        if victim not in now and len(now) == 2 and health["Color"] == "Green":
            break
        time.sleep(2)
    else:
        raise AssertionError(f"no healthy replacement: {now} {health}")
    events = [e["Message"] for e in eb.describe_events(EnvironmentName=ENV, MaxRecords=100)["Events"]]
    assert any(f"Removed instance [{victim}]" in m for m in events), events[:20]
    cname = eb.describe_environments(EnvironmentNames=[ENV])["Environments"][0]["CNAME"]
    probe = client(rehearsal, operator_env, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                   f"http://{cname}:3334/health", timeout=30)
    assert probe.stdout == "200"
