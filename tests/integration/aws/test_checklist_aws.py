"""The AWS checklist steps run by the real step runner against the emulated AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployer import config, steps
from deployer.checklist import registry, storage
from deployer.checklist.context import Context
from deployer.checklist.registry import Credentials, RegistryAccess, RegistryLogin, RegistryStatus
from deployer.checklist.storage import EfsStorage

pytestmark = pytest.mark.integration
AWS_CLI = Path(sys.executable).with_name("aws")


def cli(*args: str) -> dict:
    out = subprocess.run([str(AWS_CLI), *args, "--output", "json"], capture_output=True, text=True, check=True,
                         env=os.environ.copy())
    return json.loads(out.stdout)


@pytest.fixture
def load(tmp_path):
    def load(**env: str) -> config.Loaded:
        (tmp_path / "overrides.yml").write_text("{}\n")
        environ = {"DEPLOY__EB__KEY_NAME": "sifu-ops", "EDX_OAUTH2_CLIENT_SECRET": "oauth-s3cret-value", **env}
        return config.load(environ=environ, overrides_file=tmp_path / "overrides.yml",
                           answers_file=tmp_path / "answers.yml")
    return load


@pytest.fixture
def key_pair(aws):
    aws.client("ec2").create_key_pair(KeyName="sifu-ops")


def aws_steps() -> list:
    """The steps that talk to AWS before the bundle: 1-4 and 14a."""
    return [registry.Credentials(), registry.RegistryStatus(), registry.RegistryAccess(), registry.RegistryLogin(),
            storage.EfsStorage(), storage.ManagedDatabase(), storage.Secrets()]


def run(loaded, dry_run: bool, step_list=None) -> steps.RunReport:
    ctx = Context(loaded=loaded, dry_run=dry_run, assume_yes=True)
    return steps.run(step_list or aws_steps(), ctx, quiet=True)


def counts(aws) -> dict[str, int]:
    ec2, efs = aws.client("ec2"), aws.client("efs")
    systems = efs.describe_file_systems()["FileSystems"]
    groups = ec2.describe_security_groups()["SecurityGroups"]
    return {
        "repositories": len(aws.client("ecr").describe_repositories()["repositories"]),
        "file_systems": len(systems),
        "mount_targets": sum(len(efs.describe_mount_targets(FileSystemId=f["FileSystemId"])["MountTargets"])
                             for f in systems),
        "security_groups": len(groups),
        "ingress_rules": sum(len(g["IpPermissions"]) for g in groups),
        "parameters": len(aws.client("ssm").describe_parameters()["Parameters"]),
        "attached_policies": len(aws.client("iam").list_attached_role_policies(
            RoleName="aws-elasticbeanstalk-ec2-role")["AttachedPolicies"]),
    }


def test_plan_on_a_fresh_account_makes_zero_mutating_calls(aws, load, key_pair):
    report = run(load(), dry_run=True)
    data = report.as_json()
    assert data["aws_calls"]["mutate"] == 0 and data["mutating_calls"] == []
    assert data["aws_calls"]["read"] > 10
    by_number = {(s["number"], s["name"]): s for s in data["steps"]}
    assert by_number[(3, "Registry and instance role access")]["status"] == "planned"
    assert "create ECR repository sifu-notebooks (scan on push, immutable tags, keep last 10)" in \
        by_number[(3, "Registry and instance role access")]["actions"]
    assert by_number[("14a", "EFS file system")]["status"] == "planned"
    assert by_number[("14a", "Secrets in SSM")]["status"] == "planned"
    assert "oauth-s3cret-value" not in json.dumps(data)
    assert aws.client("ecr").describe_repositories()["repositories"] == []


def test_apply_then_rerun_changes_nothing(aws, load, key_pair):
    first = run(load(), dry_run=False)
    assert first.failed is None, first.summary()
    assert first.counters.aws_mutate > 0
    second = run(load(), dry_run=False)
    assert second.summary() == "no changes"
    assert second.counters.aws_mutate == 0
    assert {s.status for s in second.steps} == {"ok"}
    # What the operator's AWS CLI sees afterwards.
    attached = cli("iam", "list-attached-role-policies", "--role-name", "aws-elasticbeanstalk-ec2-role")
    assert [p["PolicyName"] for p in attached["AttachedPolicies"]] == ["AmazonEC2ContainerRegistryReadOnly"]
    policy = json.loads(cli("ecr", "get-lifecycle-policy", "--repository-name", "sifu-notebooks")["lifecyclePolicyText"])
    assert policy["rules"][1]["selection"]["countNumber"] == 10
    fs_id = cli("efs", "describe-file-systems")["FileSystems"][0]["FileSystemId"]
    zones = {t["AvailabilityZoneName"] for t in cli("efs", "describe-mount-targets", "--file-system-id", fs_id)["MountTargets"]}
    subnets = cli("ec2", "describe-subnets", "--filters", "Name=default-for-az,Values=true")["Subnets"]
    assert zones == {s["AvailabilityZone"] for s in subnets}
    secret = aws.client("ssm").get_parameter(Name="/sifu-notebooks/sifu-notebooks-env/EDX_OAUTH2_CLIENT_SECRET",
                                             WithDecryption=True)["Parameter"]
    assert secret["Type"] == "SecureString" and secret["Value"] == "oauth-s3cret-value"


def test_efs_admits_nfs_only_from_the_instances_group(aws, load, key_pair):
    ctx = Context(loaded=load(), dry_run=False)
    report = steps.run(aws_steps(), ctx, quiet=True)
    assert report.failed is None
    instances_sg = ctx.facts.instance_security_group
    ec2 = aws.client("ec2")
    efs_sg = ec2.describe_security_groups(Filters=[{"Name": "group-name",
                                                    "Values": ["sifu-notebooks-sifu-notebooks-env-efs"]}])
    rules = efs_sg["SecurityGroups"][0]["IpPermissions"]
    assert rules == [{"FromPort": 2049, "IpProtocol": "tcp", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
                      "ToPort": 2049, "UserIdGroupPairs": [{"Description": "NFS from EB instances",
                                                            "GroupId": instances_sg, "UserId": "123456789012"}]}]
    assert ctx.facts.file_system_id.startswith("fs-")


def test_interrupted_run_converges_without_duplicates(aws, load, key_pair):
    clean = run(load(), dry_run=False)
    assert clean.failed is None
    expected = counts(aws)
    aws.reset()
    aws.client("ec2").create_key_pair(KeyName="sifu-ops")
    # Interrupted after the registry step, then after the EFS step: each re-run picks up where it stopped.
    run(load(), dry_run=False, step_list=[RegistryAccess()])
    run(load(), dry_run=False, step_list=[RegistryAccess(), EfsStorage()])
    again = run(load(), dry_run=False)
    assert again.failed is None
    assert counts(aws) == expected


def test_region_mismatch_is_refused_before_any_call(aws, load, key_pair):
    # The configuration layer refuses it outright; step 1 repeats the check for settings built elsewhere.
    with pytest.raises(config.ConfigError, match="efs.region = eu-west-1 .* must equal eb.region"):
        load(DEPLOY__EFS__REGION="eu-west-1")


def test_missing_key_pair_fails_before_any_mutation(aws, load):
    report = run(load(), dry_run=False)
    assert report.failed.number == 1
    assert "EC2 key pair 'sifu-ops' does not exist in us-east-1" in report.failed.error
    assert report.counters.aws_mutate == 0
    empty = run(load(DEPLOY__EB__KEY_NAME=""), dry_run=False)
    assert "eb.key_name is empty" in empty.failed.error


def test_secrets_are_secure_strings_and_the_signing_key_is_generated_once(aws, load, key_pair):
    ctx = Context(loaded=load(), dry_run=False)
    assert steps.run(aws_steps(), ctx, quiet=True).failed is None
    ssm = aws.client("ssm")
    name = "/sifu-notebooks/sifu-notebooks-env/SIFU_SECRET_KEY"
    key = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert key["Type"] == "SecureString" and len(key["Value"]) >= 48
    # The smoke check's service token: generated once like the signing key.
    service = "/sifu-notebooks/sifu-notebooks-env/SIFU_SERVICE_TOKEN"
    service_token = ssm.get_parameter(Name=service, WithDecryption=True)["Parameter"]
    assert service_token["Type"] == "SecureString" and len(service_token["Value"]) >= 48
    assert set(ctx.facts.secret_arns) == {"SIFU_SECRET_KEY", "SIFU_SERVICE_TOKEN", "EDX_OAUTH2_CLIENT_SECRET"}
    # A new OAuth secret updates its parameter only; the signing key stays.
    report = run(load(EDX_OAUTH2_CLIENT_SECRET="rotated-secret"), dry_run=False)
    changed = [s for s in report.steps if s.status == "changed"]
    assert [s.name for s in changed] == ["Secrets in SSM"]
    assert changed[0].actions == ["update SecureString /sifu-notebooks/sifu-notebooks-env/EDX_OAUTH2_CLIENT_SECRET"]
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == key["Value"]
    assert ssm.get_parameter(Name=service, WithDecryption=True)["Parameter"]["Value"] == service_token["Value"]
    assert "rotated-secret" not in json.dumps(report.as_json())


def test_a_missing_oauth_secret_is_a_plain_error(aws, load, key_pair):
    report = run(load(EDX_OAUTH2_CLIENT_SECRET=""), dry_run=True)
    assert report.failed.name == "Secrets in SSM"
    assert "edx.oauth2_client_secret (EDX_OAUTH2_CLIENT_SECRET) is empty" in report.failed.error


def test_managed_database_outside_the_environment_with_deletion_protection(aws, load, key_pair):
    env = {"DEPLOY__RDS__MODE": "managed", "RDS_PASSWORD": "db-Passw0rd-value"}
    plan = run(load(**env), dry_run=True)
    assert plan.failed is None and plan.counters.aws_mutate == 0
    db_step = next(s for s in plan.steps if s.name == "Managed database")
    assert db_step.status == "planned"
    assert any("RDS PostgreSQL sifu-notebooks-sifu-notebooks-env-db" in a for a in db_step.actions)
    ctx = Context(loaded=load(**env), dry_run=False)
    report = steps.run(aws_steps(), ctx, quiet=True)
    assert report.failed is None, report.summary()
    db = aws.client("rds").describe_db_instances(
        DBInstanceIdentifier="sifu-notebooks-sifu-notebooks-env-db")["DBInstances"][0]
    assert db["DeletionProtection"] is True and db["StorageEncrypted"] is True and db["Engine"] == "postgres"
    assert ctx.facts.rds_endpoint == db["Endpoint"]["Address"]
    group = aws.client("ec2").describe_security_groups(GroupIds=[db["VpcSecurityGroups"][0]["VpcSecurityGroupId"]])
    rules = group["SecurityGroups"][0]["IpPermissions"]
    assert [(r["FromPort"], [p["GroupId"] for p in r["UserIdGroupPairs"]], r["IpRanges"]) for r in rules] == [
        (5432, [ctx.facts.instance_security_group], [])]
    password = aws.client("ssm").get_parameter(Name="/sifu-notebooks/sifu-notebooks-env/RDS_PASSWORD",
                                               WithDecryption=True)["Parameter"]
    assert password["Type"] == "SecureString"
    assert "db-Passw0rd-value" not in json.dumps(report.as_json())
    assert run(load(**env), dry_run=False).summary() == "no changes"
    with pytest.raises(config.ConfigError, match="rds.password .* is required when rds.mode is managed"):
        load(DEPLOY__RDS__MODE="managed")


def test_registry_login_and_repository_uri_come_from_ecr(aws, deploy, registry):
    # The emulated ECR names the local registry as AWS's names ECR's endpoint: the login (user AWS, a password
    # from the token, the host of proxyEndpoint, an expiry 12 h ahead) and the repository URI on that host.
    aws.use_registry(registry)
    report, ctx, _ = deploy(step_list=[Credentials(), RegistryStatus(), RegistryAccess(), RegistryLogin()])
    assert report.failed is None, report.summary()
    login = ctx.facts.registry_login
    assert (login.registry, login.username, login.password) == (registry.host, "AWS", registry.password)
    assert timedelta(hours=11) < login.expires_at - datetime.now(UTC) <= timedelta(hours=12)
    assert ctx.facts.repository_uri == f"{registry.host}/sifu-notebooks"
    assert registry.host in report.steps[-1].summary
    assert registry.password not in repr(login) and registry.password not in json.dumps(report.as_json())
