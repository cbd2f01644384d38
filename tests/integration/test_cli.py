"""The task runner as an operator runs it: ./inv in a subprocess, real files, real exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deployer import REPO_ROOT
from tests.support.aws import aws, moto_server  # noqa: F401  (fixtures: plan/deploy run against the emulated AWS)

pytestmark = pytest.mark.integration

CLIENT_SECRET = "oauth-Client-Secret-7c6b5a"
DB_PASSWORD = "rds-Password-4d3e2f"
INV = str(Path(sys.executable).parent / "inv")


def inv(*args, overrides=None, env=None, tmp_path=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EDX_", "RDS_", "DEPLOY__", "EFS_"))}
    if overrides is not None:
        path = tmp_path / "overrides.yml"
        path.write_text(yaml.safe_dump(overrides))
        environ["OVERRIDES"] = str(path)
    environ.update(env or {})
    return subprocess.run([INV, "--search-root", str(REPO_ROOT), *args], capture_output=True, text=True, env=environ, cwd=tmp_path)


SITE = {
    "edx": {"hostname": "lms.example.org", "oauth2_client_id": "sifu", "oauth2_client_secret": CLIENT_SECRET,
            "oauth2_redirect_uri": "https://lms.example.org/cb"},
    "rds": {"mode": "external", "host": "db.example.org", "password": DB_PASSWORD},
    "eb": {"key_name": "sifu-ops"},
}


@pytest.fixture
def account(aws, docker_engine, registry, monkeypatch):
    """A fresh emulated AWS account (env from MotoServer.env(), inherited by ./inv) with our key pair; the image
    steps use the private dockerd, and the emulated ECR's login names the local registry."""
    aws.client("ec2").create_key_pair(KeyName="sifu-ops")
    aws.use_registry(registry)
    for name, value in docker_engine.env().items():
        monkeypatch.setenv(name, value)
    return aws


def test_list_names_every_task_with_a_description(tmp_path):
    result = inv("--list", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    tasks = [line.split()[0] for line in result.stdout.splitlines()[2:] if line.startswith("  ") and line.split()]
    assert {"config", "render", "plan", "deploy", "test", "bench"} <= set(tasks)
    for line in result.stdout.splitlines()[2:]:
        if line.startswith("  ") and not line.startswith("    "):
            assert len(line.split()) > 1, f"task without a description: {line!r}"


def test_help_documents_each_flag(tmp_path):
    result = inv("--help", "deploy", tmp_path=tmp_path)
    assert result.returncode == 0
    for flag in ("--dry-run", "--json", "--yes", "--no-wait", "--env"):
        assert flag in result.stdout


def test_secrets_never_printed_by_config_render_or_plan(account, tmp_path):
    outputs = []
    for args in (["config"], ["config", "--json"], ["render", "--out", str(tmp_path / "out")], ["plan", "--json"], ["plan"]):
        result = inv(*args, overrides=SITE, tmp_path=tmp_path)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        outputs.append(result.stdout + result.stderr)
    for text in outputs:
        assert CLIENT_SECRET not in text and DB_PASSWORD not in text
    assert "********" in outputs[0]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            content = path.read_text()
            assert CLIENT_SECRET not in content and DB_PASSWORD not in content, path


def test_config_shows_sources(tmp_path):
    result = inv("config", "--json", overrides=SITE, env={"EDX_HOSTNAME": "lms2.example.org"}, tmp_path=tmp_path)
    rows = {row["key"]: row for row in json.loads(result.stdout)["settings"]}
    assert rows["edx.hostname"] == {"key": "edx.hostname", "value": "lms2.example.org", "source": "env EDX_HOSTNAME"}
    assert rows["rds.host"]["source"].endswith("overrides.yml")
    assert rows["ports.sifu"]["source"] == "defaults"


def test_bad_config_exits_2_naming_the_key_and_changes_nothing(tmp_path):
    out = tmp_path / "out"
    result = inv("render", "--out", str(out), overrides={"eb": {"regoin": "us-east-1"}}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "eb.regoin" in result.stderr and "did you mean eb.region" in result.stderr
    assert not out.exists()


def test_plan_json_on_a_fresh_account_lists_the_full_plan_with_zero_mutations(account, tmp_path):
    result = inv("plan", "--json", overrides=SITE, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    plan = json.loads(result.stdout)
    numbers = [str(step["number"]) for step in plan["steps"]]
    for seed in range(1, 14):
        assert str(seed) in numbers
    assert {"14a", "14b", "14c", "14d", "14e", "14f"} <= set(numbers)
    assert plan["aws_calls"]["read"] > 0 and plan["aws_calls"]["mutate"] == 0
    assert plan["mutating_calls"] == []
    assert plan["bytes_pushed"] == 0
    assert plan["mode"] == "plan" and plan["result"] == "changes"
    planned = {str(s["number"]) for s in plan["steps"] if s["status"] == "planned"}
    assert {"3", "8", "14a", "14b", "14c"} <= planned
    # The plan changed nothing in the account.
    assert account.client("elasticbeanstalk").describe_applications()["Applications"] == []
    assert account.client("ecr").describe_repositories()["repositories"] == []


def test_plan_without_credentials_fails_at_step_1_with_a_plain_message(tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    path = tmp_path / "overrides.yml"
    path.write_text(yaml.safe_dump(SITE))
    environ["OVERRIDES"] = str(path)
    result = subprocess.run([INV, "--search-root", str(REPO_ROOT), "plan"], capture_output=True, text=True,
                            env=environ, cwd=tmp_path)
    assert result.returncode == 1
    assert "failed at step 1 (Tools and credentials): no AWS credentials" in result.stdout
    assert "set AWS_PROFILE" in result.stdout.replace("Set AWS_PROFILE", "set AWS_PROFILE")
    assert "AWS calls: 0 read, 0 mutate" in result.stdout


def test_render_flag_overrides_port_everywhere(tmp_path):
    out = tmp_path / "out"
    result = inv("render", "--out", str(out), "--sifu-port", "4334", overrides=SITE, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "listen 4334;" in (out / "bundle/.platform/nginx/conf.d/sifu-sifu.conf").read_text()
    assert "--port 4334" in (out / "image/supervisord.conf").read_text()


@pytest.mark.parametrize("case, change, code, message", [
    ("unknown profile", {"env": {"AWS_PROFILE": "nobody"}}, 1,
     "failed at step 1 (Tools and credentials): no AWS credentials: The config profile (nobody) could not be found"),
    # Caught even earlier, by config validation (exit 2, before any AWS call).
    ("region mismatch", {"overrides": {"efs": {"region": "eu-west-1"}}}, 2,
     "efs.region = eu-west-1 (from"),
    # Issue 12: what a deployed Sifu needs to log anyone in, refused before any AWS call (not for render).
    ("missing LMS settings", {"overrides": {"edx": {"oauth2_client_secret": CLIENT_SECRET}}}, 2,
     "edx.oauth2_client_id (from defaults): is required to deploy"),
    ("missing key pair", {"overrides": {"eb": {"key_name": "nobody-key"}}}, 1,
     "failed at step 1 (Tools and credentials): EC2 key pair 'nobody-key' does not exist in us-east-1"),
])
def test_deploy_stops_with_a_clear_error_before_any_change(account, tmp_path, case, change, code, message):
    overrides = {**SITE, **change.get("overrides", {})}
    result = inv("deploy", "--yes", overrides=overrides, env=change.get("env"), tmp_path=tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stdout + result.stderr
    if code == 1:
        assert ", 0 mutate" in result.stdout
    assert account.client("ecr").describe_repositories()["repositories"] == []
    assert account.client("elasticbeanstalk").describe_applications()["Applications"] == []
