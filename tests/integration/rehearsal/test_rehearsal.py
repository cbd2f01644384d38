"""The dress rehearsal: `inv sandbox --instances 2`, then `inv deploy --yes`, as an operator runs them.

Everything behind the emulated AWS is real and on this machine (sandbox/fleet.py): two instance hosts (sshd,
nginx, dockerd, a metadata service) that run what the Elastic Beanstalk platform runs from the bundle, HAProxy
as the load balancer generated from the environment's option settings, nfs-ganesha as EFS and PostgreSQL as RDS.
The deploy and the browser run as the sandbox's clients (`client` command): there the environment's CNAME
resolves to the load balancer. Nothing overrides an address or a URL.
"""

from __future__ import annotations

import json
import re
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
PREFIX = os.environ.get("SIFU_REHEARSAL_PREFIX", "sifurh")  # at most 7 characters: hosts are PREFIX-iNNN
SUBNET = os.environ.get("SIFU_REHEARSAL_SUBNET", "10.238.0")


@pytest.fixture(scope="module")
def rehearsal(docker_engine, localbase_image, app_image, tmp_path_factory):
    """`inv sandbox --instances 2`: the sandbox's session with a fleet, building with the session's engine."""
    from sandbox.session import running_sandbox

    workdir = tmp_path_factory.mktemp("rehearsal")
    with running_sandbox("us-east-1", instances=2, workdir=workdir, prefix=PREFIX, subnet=SUBNET,
                         engine=docker_engine, sifu_port=app_image.sifu_port) as box:
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


def instances(box) -> dict[str, str]:
    """The environment's instances: id -> address (what EC2 reports; the hosts the sandbox runs)."""
    eb = box.server.client("elasticbeanstalk")
    ids = [i["Id"] for i in eb.describe_environment_resources(EnvironmentName=ENV)["EnvironmentResources"]["Instances"]]
    found = box.server.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["PublicIpAddress"] for r in found for i in r["Instances"]}


def urls(box, app_image) -> dict[str, str]:
    eb = box.server.client("elasticbeanstalk")
    cname = eb.describe_environments(EnvironmentNames=[ENV])["Environments"][0]["CNAME"]
    return {"sifu": f"https://{cname}:{app_image.sifu_port}", "jupyter": f"https://{cname}:{app_image.jupyter_port}",
            "lms": box.lms_url}


def students(box, env, app_image, command, *extra, timeout=600):
    """tests/integration/rehearsal/student.py as the sandbox's client; its JSON answer."""
    found = urls(box, app_image)
    done = client(box, env, sys.executable, "-m", "tests.integration.rehearsal.student", command,
                  "--lms", found["lms"], "--sifu", found["sifu"], "--jupyter", found["jupyter"],
                  "--client-id", env["DEPLOY__EDX__OAUTH2_CLIENT_ID"],
                  "--redirect-uri", env["DEPLOY__EDX__OAUTH2_REDIRECT_URI"], *extra, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def client(box, env, *argv, timeout=1500):
    return subprocess.run([str(box.client), *argv], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def inv(box, env, *args, timeout=1500, env_extra=None):
    return client(box, {**env, **(env_extra or {})}, INV, "--search-root", str(REPO_ROOT), *args, timeout=timeout)


@pytest.fixture(scope="module")
def deployed(rehearsal, operator_env):
    first = inv(rehearsal, operator_env, "deploy", "--yes")
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    return first


def test_deploy_passes_every_step_on_two_instances_then_changes_nothing(rehearsal, operator_env, deployed):
    out = deployed.stdout
    for step in ("1", "9", "14c", "14d", "14e", "14f"):
        assert re.search(rf"^\[ *{step}\] .*(changed|ok) ", out, re.M), (step, out[-4000:])
    eb = rehearsal.server.client("elasticbeanstalk")
    env = eb.describe_environments(EnvironmentNames=[ENV])["Environments"][0]
    assert (env["Status"], env["Health"]) == ("Ready", "Green")
    instances = eb.describe_environment_resources(EnvironmentName=ENV)["EnvironmentResources"]["Instances"]
    assert len(instances) == 2

    again = inv(rehearsal, operator_env, "deploy", "--yes", "--json")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-3000:]
    report = json.loads(again.stdout)
    assert report["result"] == "no changes", [(s["number"], s["status"], s["summary"]) for s in report["steps"]
                                              if s["status"] != "ok"]
    assert report["aws_calls"]["mutate"] == 0 and report["bytes_pushed"] == 0


def test_a_token_from_one_instance_serves_on_the_other_and_the_kernel_stays_on_one(rehearsal, operator_env,
                                                                                   app_image, deployed):
    found = students(rehearsal, operator_env, app_image, "journey", "--file", "Rehearsal.ipynb")
    # Sifu's port is not sticky: the token one instance issued is honoured by the other (one shared database).
    assert found["token_by"] and found["serve_by"] and found["token_by"] != found["serve_by"], found
    assert found["serve_status"] == 302
    # Jupyter's port is sticky (AWSALB): the page, the session, the save and the read all on one instance.
    assert len(found["jupyter_by"]) == 1 and found["result"] == "42", found
    assert found["saved"] == 200 and found["read_back"] == "saved by alice" and found["kernel_still_there"] == 200


def sifu_requests(box, pattern: str) -> dict[str, int]:
    """Per instance: how many of its nginx's Sifu access-log lines match `pattern` (request method and path)."""
    found = {}
    for instance in instances(box):
        log = box.workdir / "fleet" / instance / "var-log" / "nginx" / "sifu.access.log"
        found[instance] = len(re.findall(pattern, log.read_text())) if log.exists() else 0
    return found


def test_in_chromium_the_framed_notebook_keeps_its_kernel_on_one_instance(rehearsal, operator_env, app_image,
                                                                          deployed, tmp_path):
    """Through the CNAME and the load balancer, in a cross-site iframe, where Chromium sends no AWSALB cookie."""
    file = "Browser.ipynb"
    found = urls(rehearsal, app_image)
    token_pattern, serve_pattern = r'"POST /token ', rf'"GET /v1/api/notebooks/users/alice/courses/\S+/{file} '
    for attempt in range(3):  # until devlms's token and the iframe's serve request met different instances
        tokens, serves = sifu_requests(rehearsal, token_pattern), sifu_requests(rehearsal, serve_pattern)
        done = client(rehearsal, operator_env, sys.executable, "-m", "tests.integration.rehearsal.browser",
                      "--lms", found["lms"], "--jupyter", found["jupyter"], "--file", file,
                      "--ca-file", str(rehearsal.workdir / "fleet" / "ca" / "sandbox-ca.pem"),
                      "--home", str(tmp_path / f"home-{attempt}"), timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        visit = json.loads(done.stdout.strip().splitlines()[-1])
        token_by = {i for i, n in sifu_requests(rehearsal, token_pattern).items() if n > tokens[i]}
        serve_by = {i for i, n in sifu_requests(rehearsal, serve_pattern).items() if n > serves[i]}
        assert len(token_by) == 1 and len(serve_by) == 1, (token_by, serve_by)
        if token_by != serve_by:
            break
    else:
        raise AssertionError("three visits, and each time one instance issued the token and served the notebook")
    # Every Jupyter response (the page, the API, the save) came from one instance; the kernel ran there.
    served = {r["served_by"] for r in visit["jupyter"]}
    assert len(served) == 1 and None not in served, visit["jupyter"]
    assert visit["result"] == "42" and visit["saved"] == 200, visit
    routed = [r for r in visit["jupyter"] if r["routed_by"]]
    print(f"Chromium: {len(visit['jupyter'])} Jupyter responses, all from {served.pop()}; {len(routed)} of them reached "
          f"the other instance first and were passed on; token by {token_by}, serve by {serve_by}")
    from tests.integration.sifu.helpers import COURSE

    (export,) = (rehearsal.workdir / "fleet" / "stores").glob("fs-*/export")
    cells = json.loads((export / "users" / "alice" / COURSE / file).read_text())["cells"]
    outputs = ["".join(o.get("data", {}).get("text/plain", "")) for c in cells if c["cell_type"] == "code"
               for o in c.get("outputs", [])]
    assert "42" in outputs, cells


def test_status_shows_both_instances_healthy_and_logs_show_both_containers(rehearsal, operator_env, deployed):
    eb = rehearsal.server.client("elasticbeanstalk")
    health = eb.describe_instances_health(EnvironmentName=ENV, AttributeNames=["All"])["InstanceHealthList"]
    assert [h["Color"] for h in health] == ["Green", "Green"]
    status = inv(rehearsal, operator_env, "status", timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    for instance in health:
        assert instance["InstanceId"] in status.stdout
    logs = inv(rehearsal, operator_env, "logs", timeout=120)
    assert logs.returncode == 0, logs.stdout + logs.stderr
    for address in instances(rehearsal).values():
        assert f"==> {address}" in logs.stdout or f"@{address}" in logs.stdout, logs.stdout[-3000:]
    assert logs.stdout.count("supervisord") >= 2 or logs.stdout.count("INFO") >= 2, logs.stdout[-3000:]


def test_the_metadata_service_answers_the_instance_but_not_its_container(rehearsal, deployed):
    instance, address = sorted(instances(rehearsal).items())[0]
    host = f"{PREFIX}-i{address.rsplit('.', 1)[1]}"
    ask = "curl -s -o /dev/null -w %{http_code} -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' " \
          "http://169.254.169.254/latest/api/token"
    from_host = subprocess.run(["ip", "netns", "exec", host, "bash", "-c", ask], capture_output=True, text=True)
    assert from_host.stdout == "200", from_host
    docker = ["docker", "-H", f"unix://{rehearsal.workdir / 'fleet' / instance / 'docker.sock'}"]
    container = subprocess.run([*docker, "ps", "-q", "--filter", "label=sifu.role=app"], capture_output=True,
                               text=True, check=True).stdout.split()
    assert len(container) == 1
    probe = ("import urllib.request as u; r=u.Request('http://169.254.169.254/latest/api/token', method='PUT', "
             "headers={'X-aws-ec2-metadata-token-ttl-seconds': '60'});\n"
             "try: u.urlopen(r, timeout=5); print('answered')\nexcept Exception as e: print(type(e).__name__, e)")
    from_container = subprocess.run([*docker, "exec", container[0], "python", "-c", probe], capture_output=True,
                                    text=True)
    assert "answered" not in from_container.stdout and "refused" in from_container.stdout.lower(), from_container


def test_twenty_students_keep_working_while_a_new_version_rolls_out(rehearsal, operator_env, app_image, deployed,
                                                                    tmp_path):
    students(rehearsal, operator_env, app_image, "journey", "--file", "Load.ipynb", "--user", "bob")
    stop = tmp_path / "stop"
    found = urls(rehearsal, app_image)
    load = subprocess.Popen(
        [str(rehearsal.client), sys.executable, "-m", "tests.integration.rehearsal.student", "load",
         "--lms", found["lms"], "--sifu", found["sifu"], "--jupyter", found["jupyter"],
         "--client-id", operator_env["DEPLOY__EDX__OAUTH2_CLIENT_ID"],
         "--redirect-uri", operator_env["DEPLOY__EDX__OAUTH2_REDIRECT_URI"], "--file", "Load.ipynb",
         "--students", "20", "--until", str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=operator_env, cwd=REPO_ROOT)
    try:
        # A new version: a setting that only the bundle carries (converge's wait), so the image stays.
        redeploy = inv(rehearsal, operator_env, "deploy", "--yes", timeout=900,
                       env_extra={"DEPLOY__REMOTE__CONTAINER_WAIT": "90"})
        assert redeploy.returncode == 0, redeploy.stdout[-5000:] + redeploy.stderr[-2000:]
        assert "Deploying new version to instance(s)" in redeploy.stdout
    finally:
        stop.touch()
        out, err = load.communicate(timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    total = sum(v for k, v in result["statuses"].items() if k != "error")
    assert total >= 200 and result["failed"] == 0, result
    assert len([name for name in result["instances"] if name]) == 2, result
    # Every notebook saved before the deploy is intact on EFS afterwards.
    from tests.integration.sifu.helpers import COURSE

    (export,) = (rehearsal.workdir / "fleet" / "stores").glob("fs-*/export")
    saved = json.loads((export / "users" / "bob" / COURSE / "Load.ipynb").read_text())
    source = saved["cells"][-1]["source"]
    assert ("".join(source) if isinstance(source, list) else source) == "saved by bob", saved["cells"][-1]
    copies = list((export / "users").glob(f"student-*/{COURSE}/Load.ipynb"))
    assert len(copies) == 20 and all(json.loads(c.read_text())["cells"] for c in copies)


def test_a_dead_instance_is_replaced_through_the_bundle_alone(rehearsal, operator_env, app_image, deployed):
    eb = rehearsal.server.client("elasticbeanstalk")
    before = instances(rehearsal)
    victim, address = sorted(before.items())[0]
    # The instance dies: every process of its host ends at once.
    killed = subprocess.run(["bash", "-c", f"kill -9 $(ip netns pids {PREFIX}-i{address.rsplit('.', 1)[1]})"])
    assert killed.returncode == 0
    # The load balancer takes it out of both processes within their health checks; the other instance serves.
    found = urls(rehearsal, app_image)
    probe = "".join(f"for i in $(seq 5); do curl -s -o /dev/null -w '%{{http_code}} ' {url}; done; "
                    for url in (f"{found['sifu']}/health", f"{found['jupyter']}/api"))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        answered = client(rehearsal, operator_env, "bash", "-c", probe, timeout=120).stdout.split()
        if answered == ["200"] * 10:
            break
        time.sleep(2)
    else:
        raise AssertionError(f"the load balancer still sends to the dead instance: {answered}")
    # The student reloads: the saved notebook is there (EFS) and a new kernel runs on the other instance.
    again = students(rehearsal, operator_env, app_image, "journey", "--file", "Rehearsal.ipynb")
    assert again["result"] == "42" and again["saved"] == 200, again
    # Auto Scaling replaces the instance; the replacement converges through the bundle's hooks and turns healthy.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        now = instances(rehearsal)
        health = eb.describe_environment_health(EnvironmentName=ENV, AttributeNames=["All"])
        if victim not in now and len(now) == 2 and health["Color"] == "Green":
            break
        time.sleep(2)
    else:
        raise AssertionError(f"no healthy replacement: {now} {health}")
    events = [e["Message"] for e in eb.describe_events(EnvironmentName=ENV, MaxRecords=100)["Events"]]
    assert any(f"Removed instance [{victim}]" in m for m in events), events[:20]
    assert any(f"Added instance [{i}]" in m for m in events for i in now if i not in before), events[:20]
    answered = client(rehearsal, operator_env, "bash", "-c", probe, timeout=120).stdout.split()
    assert answered == ["200"] * 10, answered


def test_raising_the_minimum_adds_an_instance_that_converges_through_the_bundle_and_serves(rehearsal, operator_env,
                                                                                           app_image, deployed):
    eb = rehearsal.server.client("elasticbeanstalk")
    before = instances(rehearsal)
    grown = inv(rehearsal, operator_env, "deploy", "--yes", timeout=900, env_extra={
        "DEPLOY__EB__MIN_INSTANCES": "3", "DEPLOY__EB__MAX_INSTANCES": "3"})
    assert grown.returncode == 0, grown.stdout[-5000:] + grown.stderr[-2000:]
    now = instances(rehearsal)
    added = set(now) - set(before)
    assert len(now) == 3 and len(added) == 1 and set(before) <= set(now), (before, now)
    health = eb.describe_instances_health(EnvironmentName=ENV, AttributeNames=["All"])["InstanceHealthList"]
    assert sorted(h["Color"] for h in health) == ["Green"] * 3, health
    # The platform deployed the bundle on the new instance and the load balancer sends to it: its nginx names it.
    (new,) = added
    name = f"ip-{now[new].replace('.', '-')}"
    probe = ("for i in $(seq 12); do curl -s -o /dev/null -D - " + urls(rehearsal, app_image)["sifu"]
             + "/health | tr -d '\\r' | sed -n 's/^x-served-by: //Ip'; done")
    served = client(rehearsal, operator_env, "bash", "-c", probe, timeout=120).stdout.split()
    assert name in served and len(set(served)) == 3, served
