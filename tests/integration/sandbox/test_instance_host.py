"""A sandbox instance host does what an EB Docker instance does: ec2-user logs in with the key pair and may sudo;
the metadata service answers only with an IMDSv2 token; a deployment fetches the bundle from S3 with the
instance role's credentials, runs the hooks in order as root, pulls through ECR's login, runs the container with
the environment property and the SSM secret behind nginx on port 80; a failing hook fails the deployment with
EB's messages and leaves the running container serving; a configuration deployment runs the confighooks and
restarts the container with the new environment; after our bundle's block-imds hook a container cannot reach
the metadata service while the host can."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deployer import render
from tests.integration.sandbox.conftest import APP_PORT, EFS_ADDRESS, EFS_NAME, SECRET_VALUE

pytestmark = pytest.mark.integration
IMDS = "http://169.254.169.254/latest"
HOOK_LOG = "/var/log/hook-order.log"
# Each hook notes its phase, who runs it, where, what it sees, and which container images are running then.
MARK = ('echo "{phase} uid=$(id -u) cwd=$PWD greeting=${{GREETING:-}} running=$(docker ps -q | wc -l)" >> '
        + HOOK_LOG + "\n")
IMDS_HOOK = f"bundle/.platform/hooks/prebuild/{render.registry.IMDS_HOOK_NAME}"


def _bundle(image: str, *, extra: dict[str, tuple[str, int]] | None = None) -> dict[str, tuple[str, int]]:
    dockerrun = {"AWSEBDockerrunVersion": "1", "Image": {"Name": image, "Update": "true"},
                 "Ports": [{"ContainerPort": APP_PORT}],
                 "Volumes": [{"HostDirectory": "/var/app/data", "ContainerDirectory": "/data"}],
                 "Logging": "/var/log/tiny"}
    files = {"Dockerrun.aws.json": (json.dumps(dockerrun), 0o644),
             ".platform/nginx/conf.d/tiny.conf": ("server { listen 8081; location / { return 200 'from-bundle'; } }\n",
                                                  0o644)}
    for kind, prefix in (("hooks", ""), ("confighooks", "config-")):
        for phase in ("prebuild", "predeploy", "postdeploy"):
            files[f".platform/{kind}/{phase}/01-mark.sh"] = ("#!/bin/bash\n" + MARK.format(phase=prefix + phase), 0o755)
    # Our real bundle's hook (rendered by the deployer, as `inv deploy` puts it in the bundle).
    tree = render.render_all(_settings(), render.Facts(), validate=False)
    files[".platform/hooks/prebuild/05-block-imds.sh"] = (tree.files[IMDS_HOOK].content, tree.files[IMDS_HOOK].mode)
    files.update(extra or {})
    return files


def _settings():
    from deployer.config import load

    return load(environ={"DEPLOY__EFS__FILE_SYSTEM_ID": "fs-0123456789abcdef0"}, overrides_file=None).settings


def _get(address: str, port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _imds(host, path: str, token: bool = True) -> str:
    """curl on the host (not in a container): the HTTP status and body of GET path."""
    script = (f"t=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' {IMDS}/api/token); "
              if token else "t=; ")
    script += f"curl -s -w ' %{{http_code}}' -H \"X-aws-ec2-metadata-token: $t\" {IMDS}/{path}"
    return host.run(script).stdout


def _hook_log(host) -> list[str]:
    return host.run(f"cat {HOOK_LOG} 2>/dev/null || true").stdout.splitlines()


def _container(host) -> str:
    return host.run("cat /opt/elasticbeanstalk/deployment/container-id").stdout.strip()


def test_ec2_user_logs_in_with_the_key_pair_and_may_sudo(rehearsal):
    ssh = ["ssh", "-i", str(rehearsal.client_key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5"]
    done = subprocess.run([*ssh, f"ec2-user@{rehearsal.host.address}", "id -un; sudo -n true && sudo -n id -un"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ec2-user", "root"]
    root = subprocess.run([*ssh, f"root@{rehearsal.host.address}", "true"], capture_output=True, text=True, timeout=30)
    assert root.returncode == 255  # root may not log in, as on EB's AMIs


def test_metadata_service_answers_with_a_token_only(rehearsal):
    host = rehearsal.host
    assert _imds(host, "meta-data/instance-id", token=False) == "Unauthorized 401"
    assert _imds(host, "meta-data/instance-id") == f"{host.instance_id} 200"
    assert _imds(host, "meta-data/placement/region") == "us-east-1 200"
    body, status = _imds(host, "meta-data/iam/security-credentials/aws-elasticbeanstalk-ec2-role").rsplit(" ", 1)
    assert status == "200" and json.loads(body)["AccessKeyId"]  # STS AssumeRole on the emulated AWS


def test_deploy_runs_hooks_in_order_and_serves_the_container_with_property_and_secret(rehearsal):
    host = rehearsal.host
    rehearsal.upload("app/v1.zip", _bundle(rehearsal.image))
    result = host.deploy(rehearsal.manifest("app/v1.zip", "v1", GREETING="hello"))
    assert result.ok, result

    assert _get(host.address, 80) == (200, json.dumps({"GREETING": "hello", "DB_PASSWORD": SECRET_VALUE}))
    assert _get(host.address, 8081) == (200, "from-bundle")  # the bundle's .platform/nginx/conf.d
    assert _hook_log(host) == [
        "prebuild uid=0 cwd=/var/app/staging greeting=hello running=0",
        "predeploy uid=0 cwd=/var/app/staging greeting=hello running=0",
        "postdeploy uid=0 cwd=/var/app/current greeting=hello running=1",
    ]
    container = result.container_id
    assert container and _container(host) == container
    inspect = json.loads(host.run(["docker", "inspect", container]).stdout)[0]
    assert inspect["Config"]["Image"] == rehearsal.image
    mounts = {m["Destination"]: m["Source"] for m in inspect["Mounts"]}
    assert mounts == {"/data": "/var/app/data", "/var/log/tiny": "/var/log/eb-docker/containers/eb-current-app"}
    assert f"{EFS_ADDRESS}\t{EFS_NAME}" in host.run(["docker", "exec", container, "cat", "/etc/hosts"]).stdout
    # The secret is in the container's environment, never on a command line or in the manifest on disk.
    assert SECRET_VALUE not in " ".join(inspect["Config"]["Cmd"] + inspect["Args"])
    engine_log = host.run("cat /var/log/eb-engine.log").stdout
    assert "Executing instruction: StageApplication" in engine_log and "Command app-deploy succeeded" in engine_log
    assert "Running command .platform/hooks/postdeploy/01-mark.sh" in host.run("cat /var/log/eb-hooks.log").stdout


def test_failing_prebuild_hook_fails_the_deployment_and_the_old_container_keeps_serving(rehearsal):
    host = rehearsal.host
    before = _container(host)
    host.run(f"rm -f {HOOK_LOG}")
    failing = {".platform/hooks/prebuild/01-fail.sh": ("#!/bin/bash\necho boom >&2\nexit 3\n", 0o755)}
    rehearsal.upload("app/v2.zip", _bundle(rehearsal.image, extra=failing))
    result = host.deploy(rehearsal.manifest("app/v2.zip", "v2", GREETING="never"))

    assert not result.ok
    assert result.events == [
        "Instance deployment failed. For details, see 'eb-engine.log'.",
        "Command failed on instance. Return code: 1 Output: Command .platform/hooks/prebuild/01-fail.sh failed "
        "with error exit status 3. Stderr:boom"]
    assert result.step == "RunAppDeployPreBuildHooks"
    assert _hook_log(host) == []  # 01-fail.sh sorts before 01-mark.sh
    assert _container(host) == before
    assert _get(host.address, 80) == (200, json.dumps({"GREETING": "hello", "DB_PASSWORD": SECRET_VALUE}))
    assert "An error occurred during execution of command [app-deploy] - [RunAppDeployPreBuildHooks]" in \
        host.run("cat /var/log/eb-engine.log").stdout


def test_configuration_deployment_runs_confighooks_and_restarts_with_the_new_environment(rehearsal):
    host = rehearsal.host
    before = _container(host)
    host.run(f"rm -f {HOOK_LOG}")
    result = host.configure(rehearsal.manifest("app/v1.zip", "v1", GREETING="changed"))
    assert result.ok, result

    assert result.container_id != before
    assert host.run(["docker", "ps", "-q", "--no-trunc"]).stdout.split() == [result.container_id]
    assert _get(host.address, 80) == (200, json.dumps({"GREETING": "changed", "DB_PASSWORD": SECRET_VALUE}))
    assert _hook_log(host) == [
        "config-prebuild uid=0 cwd=/var/app/current greeting=changed running=1",
        "config-predeploy uid=0 cwd=/var/app/current greeting=changed running=1",
        "config-postdeploy uid=0 cwd=/var/app/current greeting=changed running=1",
    ]


def test_a_container_cannot_reach_the_metadata_service_the_host_can(rehearsal):
    host = rehearsal.host
    probe = ("import socket\ntry:\n    socket.create_connection(('169.254.169.254', 80), 5)\n    print('open')\n"
             "except OSError as e:\n    print(type(e).__name__)")

    def from_container() -> str:
        return host.run(["docker", "exec", _container(host), "python3", "-c", probe]).stdout.strip()

    rule = "DOCKER-USER -d 169.254.169.254/32 -j REJECT"
    assert from_container() == "ConnectionRefusedError"  # rejected by the rule the bundle's prebuild hook added
    assert _imds(host, "meta-data/instance-id") == f"{host.instance_id} 200"
    # Without the rule the container would reach it (forwarded by the host, as on EC2) ...
    host.run(f"iptables -D {rule}")
    assert from_container() == "open"
    # ... and the copy the hook installed (what its systemd unit runs after a reboot) puts the rule back.
    host.run("/usr/local/sbin/sifu-block-imds")
    assert from_container() == "ConnectionRefusedError"
    assert host.run("iptables -S DOCKER-USER").stdout.count("-d 169.254.169.254/32 -j REJECT") == 1


def test_a_killed_host_stops_answering_and_stop_leaves_nothing(rehearsal):
    """Runs last: it ends the module's host."""
    host = rehearsal.host
    init_pid, workdir = host.init_pid, host.workdir
    host.kill()
    assert not host.alive()
    assert _get_or_nothing(host.address, 80) is None
    assert not Path(f"/proc/{init_pid}").exists()  # PID 1 of the host, and with it every process of the host
    host.stop()
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert host.name not in names and f"{host.name}-md" not in names
    assert not workdir.exists()
    # No mount of the host is left in any mount namespace on the machine (dockerd's overlays included).
    for mountinfo in Path("/proc").glob("[0-9]*/mountinfo"):
        try:
            assert str(workdir) not in mountinfo.read_text(), mountinfo
        except (FileNotFoundError, ProcessLookupError):
            pass


def _get_or_nothing(address: str, port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None
