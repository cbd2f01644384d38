"""`inv status`, `inv rollback` and `inv destroy` as an operator runs them: ./inv in a subprocess against the
emulated AWS (AWS_ENDPOINT_URL), after an in-process deploy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployer import REPO_ROOT

pytestmark = pytest.mark.integration
INV = str(Path(sys.executable).parent / "inv")
ENV = "sifu-notebooks-env"


def inv(tmp_path, *args):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EDX_", "RDS_", "DEPLOY__", "EFS_"))}
    environ["OVERRIDES"] = str(tmp_path / "overrides.yml")  # written by the deploy fixture
    return subprocess.run([INV, "--search-root", str(REPO_ROOT), *args], capture_output=True, text=True,
                          env=environ, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=120)


def test_status_reports_environment_instances_and_efs(aws, deploy, tmp_path):
    report, ctx, _ = deploy()
    assert report.failed is None
    # No SSH: the emulated instance's public address is moto's, nothing of ours (tests/integration/deploy runs
    # status over SSH against a test host).
    result = inv(tmp_path, "status", "--json", "--no-ssh")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["usage"] is None
    assert (data["status"], data["health"], data["version"]) == ("Ready", "Green", ctx.facts.version_label)
    assert len(data["instances"]) == 1 and data["instances"][0]["public_ip"]
    assert data["efs"]["file_system_id"] == ctx.facts.file_system_id and len(data["efs"]["mount_targets"]) >= 2
    assert data["aws_calls"]["mutate"] == 0


def test_rollback_returns_to_the_previous_label(aws, deploy, tmp_path):
    first = deploy(tag="aaaa")[1].facts.version_label
    second = deploy(tag="bbbb")[1].facts.version_label
    assert first != second
    result = inv(tmp_path, "rollback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"rolling {ENV} back from {second} to {first}" in result.stdout
    assert "Environment update completed successfully." in result.stdout  # streamed events
    env = aws.client("elasticbeanstalk").describe_environments(EnvironmentNames=[ENV])["Environments"][0]
    assert env["VersionLabel"] == first
    result = inv(tmp_path, "rollback", "--to", "nope")
    assert result.returncode == 1 and "no version 'nope'" in result.stderr


def test_a_failed_rollback_exits_non_zero_with_eb_errors(aws, deploy, tmp_path):
    deploy(tag="aaaa")
    deploy(tag="bbbb")
    aws.fail_next_deploy(ENV, message="old image no longer starts")
    result = inv(tmp_path, "rollback")
    assert result.returncode == 1
    assert "old image no longer starts" in result.stdout + result.stderr


def test_destroy_keeps_data_unless_purged_with_confirmation(aws, deploy, tmp_path):
    assert deploy()[0].failed is None
    refused = inv(tmp_path, "destroy")
    assert refused.returncode == 1 and "pass --yes" in refused.stderr
    kept = inv(tmp_path, "destroy", "--yes")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    eb = aws.client("elasticbeanstalk")
    assert eb.describe_environments(EnvironmentNames=[ENV], IncludeDeleted=False)["Environments"] == []
    assert len(aws.client("efs").describe_file_systems()["FileSystems"]) == 1
    assert len(aws.client("ecr").describe_repositories()["repositories"]) == 1
    unconfirmed = inv(tmp_path, "destroy", "--purge", "--confirm", "wrong")
    assert unconfirmed.returncode == 1 and f"--confirm {ENV}" in unconfirmed.stderr
    purged = inv(tmp_path, "destroy", "--purge", "--confirm", ENV)
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert aws.client("efs").describe_file_systems()["FileSystems"] == []
    assert aws.client("ecr").describe_repositories()["repositories"] == []
    assert aws.client("ssm").describe_parameters()["Parameters"] == []
    assert eb.describe_applications()["Applications"] == []


def test_converge_targets_are_the_environment_instances(aws, deploy, tmp_path):
    from deployer import config
    from deployer.remote import targets

    # Two instances need a shared database (a token issued by one is unknown to the other).
    report, ctx, _ = deploy(DEPLOY__EB__MIN_INSTANCES="2", DEPLOY__EB__MAX_INSTANCES="2", DEPLOY__RDS__MODE="external",
                            DEPLOY__RDS__HOST="db.example.org", RDS_PASSWORD="db-password")
    assert report.failed is None
    ec2 = aws.client("ec2")
    running = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:elasticbeanstalk:environment-name", "Values": [ENV]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for i in r["Instances"]]
    settings = config.load(environ={}, overrides_file=tmp_path / "overrides.yml").settings
    assert sorted(targets.environment_hosts(settings)) == sorted(i["PublicIpAddress"] for i in running)
    behind = config.load(environ={"DEPLOY__SSH__GATEWAY": "ops@bastion.example.org"},
                         overrides_file=tmp_path / "overrides.yml").settings
    assert sorted(targets.environment_hosts(behind)) == sorted(i["PrivateIpAddress"] for i in running)
    aws.reset()
    with pytest.raises(targets.NoTargets, match="no running instances of sifu-notebooks-env"):
        targets.environment_hosts(settings)
