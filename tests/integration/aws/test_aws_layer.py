"""deployer/aws against the emulated AWS: counted calls, dry runs that cannot mutate, ensure_* idempotency,
and waiting on Elastic Beanstalk while streaming its events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployer.aws import Aws, AwsError, MutationRefused, classify
from deployer.aws import eb as eb_api
from deployer.aws import ec2 as ec2_api
from deployer.aws import ecr as ecr_api
from deployer.aws import efs as efs_api
from deployer.aws import iam as iam_api
from deployer.aws import s3 as s3_api
from deployer.aws import ssm as ssm_api
from deployer.aws import sts as sts_api
from sandbox.server import MotoServer

pytestmark = pytest.mark.integration
AWS_CLI = Path(sys.executable).with_name("aws")


def cli(*args: str) -> dict:
    out = subprocess.run([str(AWS_CLI), *args, "--output", "json"], capture_output=True, text=True, check=True,
                         env=os.environ.copy())
    return json.loads(out.stdout)


class FakeTime:
    """Injected sleep/clock for waits: time passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_classify_by_operation_name():
    assert [classify(op) for op in ("DescribeEnvironments", "GetAuthorizationToken", "ListPlatformVersions",
                                    "HeadObject", "CheckDNSAvailability")] == ["read"] * 5
    assert [classify(op) for op in ("CreateStorageLocation", "PutObject", "UpdateEnvironment",
                                    "AttachRolePolicy", "AuthorizeSecurityGroupIngress")] == ["mutate"] * 5


def test_calls_are_counted_and_clients_retry_in_standard_mode(aws):
    ctx = Aws(region="us-east-1")
    ecr = ctx.client("ecr")
    assert ecr.meta.config.retries == {"mode": "standard", "total_max_attempts": 8}
    assert ctx.client("ecr") is ecr  # cached
    ecr_api.find_repository(ecr, "sifu")
    ecr_api.ensure_repository(ecr, "sifu", keep_last=5)
    counts = ctx.counter.as_dict()
    assert counts["mutate"] == 2  # CreateRepository + PutLifecyclePolicy
    assert counts["operations"]["ecr.CreateRepository"] == 1
    assert counts["read"] == counts["operations"]["ecr.DescribeRepositories"] + \
        counts["operations"]["ecr.GetLifecyclePolicy"]


def test_read_only_context_refuses_mutations_before_sending(aws):
    ctx = Aws(region="us-east-1", read_only=True)
    with pytest.raises(MutationRefused, match="dry run"):
        ecr_api.ensure_repository(ctx.client("ecr"), "sifu", keep_last=5)
    assert ctx.counter.mutate == 0
    assert aws.client("ecr").describe_repositories()["repositories"] == []  # nothing reached AWS


def test_caller_identity(aws):
    identity = sts_api.caller_identity(Aws(region="us-east-1").client("sts"))
    assert identity.account == "123456789012"


def test_missing_credentials_say_how_to_fix(aws, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AwsError, match="no usable AWS credentials.*AWS_PROFILE"):
        sts_api.caller_identity(Aws(region="us-east-1").client("sts"))


def test_rejected_credentials_say_so(tmp_path, monkeypatch):
    # A second server that checks credentials (moto enforces auth after N unauthenticated actions).
    with MotoServer(log_path=tmp_path / "moto.log", extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        ctx = Aws(region="us-east-1", max_attempts=1)
        with pytest.raises(AwsError, match="AWS rejected the credentials"):
            sts_api.caller_identity(ctx.client("sts"))
        assert ctx.counter.mutate == 0


def test_ensure_repository_is_idempotent_and_fixes_drift(aws):
    ctx = Aws(region="us-east-1")
    ecr = ctx.client("ecr")
    assert ecr_api.repository_drift(ecr, "sifu", 10) == ["missing"]
    done = ecr_api.ensure_repository(ecr, "sifu", keep_last=10, tags={"project": "sifu"})
    assert done == ["created repository sifu", "set lifecycle policy: keep the last 10 images"]
    before = ctx.counter.mutate
    assert ecr_api.ensure_repository(ecr, "sifu", keep_last=10) == []
    assert ctx.counter.mutate == before  # "already there" is success, with zero mutating calls
    # Someone made tags mutable and changed the policy by hand: the next run puts it back.
    aws.client("ecr").put_image_tag_mutability(repositoryName="sifu", imageTagMutability="MUTABLE")
    assert ecr_api.ensure_repository(ecr, "sifu", keep_last=3) == [
        "made tags immutable", "set lifecycle policy: keep the last 3 images"]
    repo = cli("ecr", "describe-repositories", "--repository-names", "sifu")["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE" and repo["imageScanningConfiguration"]["scanOnPush"]
    policy = json.loads(cli("ecr", "get-lifecycle-policy", "--repository-name", "sifu")["lifecyclePolicyText"])
    assert policy["rules"][1]["selection"]["countNumber"] == 3
    login = ecr_api.registry_login(ecr)
    assert login.username == "AWS" and login.password not in repr(login)


def test_ensure_instance_role_attaches_ecr_read_only(aws):
    ctx = Aws(region="us-east-1")
    iam = ctx.client("iam")
    name = "aws-elasticbeanstalk-ec2-role"
    assert iam_api.instance_role_drift(iam, name, [iam_api.ECR_READ_ONLY]) == [
        "role", "instance-profile", "profile-role", f"policy:{iam_api.ECR_READ_ONLY}"]
    done = iam_api.ensure_instance_role(iam, name)
    assert len(done) == 4
    before = ctx.counter.mutate
    assert iam_api.ensure_instance_role(iam, name) == []
    assert ctx.counter.mutate == before
    attached = cli("iam", "list-attached-role-policies", "--role-name", name)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonEC2ContainerRegistryReadOnly"]
    profile = cli("iam", "get-instance-profile", "--instance-profile-name", name)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [name]


def test_existing_role_only_gets_the_missing_policy(aws):
    name = "aws-elasticbeanstalk-ec2-role"
    raw = aws.client("iam")
    raw.create_role(RoleName=name, AssumeRolePolicyDocument=iam_api.EC2_TRUST_POLICY)
    raw.create_instance_profile(InstanceProfileName=name)
    raw.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    assert iam_api.ensure_instance_role(Aws(region="us-east-1").client("iam"), name) == [
        "attached AmazonEC2ContainerRegistryReadOnly to aws-elasticbeanstalk-ec2-role"]


def test_ensure_secure_parameter_never_reveals_the_value(aws):
    ctx = Aws(region="us-east-1")
    ssm = ctx.client("ssm")
    secret = "s3cr3t-'$(rm -rf /)'"
    done = ssm_api.ensure_secure_parameter(ssm, "/sifu/prod/signing-key", secret, tags={"project": "sifu"})
    assert done == ["created SecureString parameter /sifu/prod/signing-key"]
    assert secret not in "".join(done)
    assert ssm_api.ensure_secure_parameter(ssm, "/sifu/prod/signing-key", secret) == []
    assert ssm_api.ensure_secure_parameter(ssm, "/sifu/prod/signing-key", secret + "2") == [
        "updated SecureString parameter /sifu/prod/signing-key"]
    stored = aws.client("ssm").get_parameter(Name="/sifu/prod/signing-key", WithDecryption=False)["Parameter"]
    assert stored["Type"] == "SecureString"


def _environment_zones(ctx: Aws, env_name: str) -> tuple[dict[str, str], str]:
    ids = eb_api.instance_ids(ctx.client("elasticbeanstalk"), env_name)
    found = ec2_api.instances(ctx.client("ec2"), ids)
    return {i.availability_zone: i.subnet_id for i in found}, found[0].security_group_ids[0]


def _deployed_environment(aws, ctx: Aws, min_size: int = 2) -> str:
    eb = ctx.client("elasticbeanstalk")
    bucket = eb_api.create_storage_location(eb)
    s3_api.upload_bundle(ctx.client("s3"), bucket, "sifu/abc.zip", b"PK bundle")
    eb_api.create_application(eb, "sifu")
    eb_api.create_application_version(eb, "sifu", "abc", bucket, "sifu/abc.zip")
    eb_api.create_environment(eb, "sifu", "sifu-prod", eb_api.docker_platform_arn(eb), "abc",
                              {("aws:autoscaling:asg", "MinSize"): str(min_size)})
    fake = FakeTime()
    eb_api.wait_for_environment(eb, "sifu-prod", datetime(2000, 1, 1, tzinfo=UTC), sleep=fake.sleep,
                                clock=fake.clock, interval=1)
    return "sifu-prod"


def test_ensure_file_system_mount_target_per_zone_and_nfs_only_from_instances(aws):
    ctx = Aws(region="us-east-1")
    env = _deployed_environment(aws, ctx)
    zones, instance_sg = _environment_zones(ctx, env)
    assert len(zones) == 2
    efs, ec2 = ctx.client("efs"), ctx.client("ec2")
    vpc = ec2_api.default_vpc_id(ec2)
    args = dict(creation_token="sifu-prod-notebooks", subnets_by_zone=zones, vpc_id=vpc,
                instance_sg=instance_sg, mount_sg_name="sifu-prod-efs")
    drift = efs_api.file_system_drift(efs, ec2, **args)
    assert drift == ["file-system", "security-group"] + [f"mount-target:{z}" for z in sorted(zones)]
    fs_id, done = efs_api.ensure_file_system(efs, ec2, tags={"project": "sifu"}, sleep=lambda s: None, **args)
    assert len(done) == 5  # file system, SG, rule, two mount targets
    before = ctx.counter.mutate
    assert efs_api.ensure_file_system(efs, ec2, tags={"project": "sifu"}, sleep=lambda s: None, **args) == (fs_id, [])
    assert efs_api.file_system_drift(efs, ec2, **args) == []
    assert ctx.counter.mutate == before
    targets = cli("efs", "describe-mount-targets", "--file-system-id", fs_id)["MountTargets"]
    assert sorted(t["SubnetId"] for t in targets) == sorted(zones.values())
    fs = cli("efs", "describe-file-systems", "--file-system-id", fs_id)["FileSystems"][0]
    assert fs["Encrypted"] is True
    sg = ec2_api.find_security_group(ec2, vpc, "sifu-prod-efs")
    assert ec2_api.allows_from_group(sg, 2049, instance_sg) and not ec2_api.open_to_world(sg)
    assert not ec2_api.allows_from_group(sg, 22, instance_sg)


def test_dry_run_of_every_check_makes_zero_mutating_calls(aws):
    ctx = Aws(region="us-east-1", read_only=True)
    eb = ctx.client("elasticbeanstalk")
    assert ecr_api.repository_drift(ctx.client("ecr"), "sifu", 10) == ["missing"]
    assert iam_api.instance_role_drift(ctx.client("iam"), "aws-elasticbeanstalk-ec2-role", [iam_api.ECR_READ_ONLY])
    assert eb_api.find_application(eb, "sifu") is None
    assert eb_api.find_environment(eb, "sifu", "sifu-prod") is None
    assert eb_api.docker_platform_arn(eb).endswith("Amazon Linux 2023/4.6.0")
    assert not s3_api.bucket_exists(ctx.client("s3"), eb_api.storage_bucket("us-east-1", "123456789012"))
    assert ssm_api.parameter_matches(ctx.client("ssm"), "/sifu/prod/signing-key", "x") is None
    assert not ec2_api.key_pair_exists(ctx.client("ec2"), "sifu")
    assert efs_api.find_file_system(ctx.client("efs"), "sifu-prod-notebooks") is None
    assert ctx.counter.mutate == 0 and ctx.counter.read >= 9


def test_wait_streams_events_live_and_verifies_version_and_health(aws):
    ctx = Aws(region="us-east-1")
    eb = ctx.client("elasticbeanstalk")
    _deployed_environment(aws, ctx, min_size=1)
    bucket = eb_api.storage_bucket("us-east-1", "123456789012")
    s3_api.upload_bundle(ctx.client("s3"), bucket, "sifu/def.zip", b"PK bundle 2")
    eb_api.create_application_version(eb, "sifu", "def", bucket, "sifu/def.zip")
    since = eb_api.latest_event_time(eb, "sifu-prod")
    request = eb_api.update_environment(eb, "sifu-prod", version_label="def")
    fake, streamed = FakeTime(), []
    result = eb_api.wait_for_environment(
        eb, "sifu-prod", since, lambda e: streamed.append((fake.now, e["Message"])), expect_version="def",
        request_id=request["ResponseMetadata"]["RequestId"], sleep=fake.sleep, clock=fake.clock, interval=5)
    messages = [m for _, m in streamed]
    assert messages[0] == "Environment update is starting."
    assert messages[-1] == "Environment update completed successfully."
    assert "Successfully launched environment: sifu-prod" not in messages  # older than `since`
    assert len({t for t, _ in streamed}) > 1  # streamed as they happened, across polls, not all at the end
    assert result.environment["VersionLabel"] == "def" and result.polls > 1
    assert result.waited_seconds == sum(fake.sleeps)


def test_wait_fails_with_eb_error_events_on_an_injected_failure(aws):
    ctx = Aws(region="us-east-1")
    eb = ctx.client("elasticbeanstalk")
    _deployed_environment(aws, ctx, min_size=1)
    bucket = eb_api.storage_bucket("us-east-1", "123456789012")
    s3_api.upload_bundle(ctx.client("s3"), bucket, "sifu/bad.zip", b"PK broken")
    eb_api.create_application_version(eb, "sifu", "bad", bucket, "sifu/bad.zip")
    aws.fail_next_deploy("sifu-prod", message="container exited: ImportError")
    since = eb_api.latest_event_time(eb, "sifu-prod")
    eb_api.update_environment(eb, "sifu-prod", version_label="bad")
    fake = FakeTime()
    with pytest.raises(eb_api.EnvironmentFailed) as failed:
        eb_api.wait_for_environment(eb, "sifu-prod", since, expect_version="bad", sleep=fake.sleep,
                                    clock=fake.clock)
    text = str(failed.value)
    assert "container exited: ImportError" in text and "Failed to deploy application." in text
    assert failed.value.environment["VersionLabel"] == "abc"  # rolled back


def test_wait_times_out_plainly(aws):
    ctx = Aws(region="us-east-1")
    eb = ctx.client("elasticbeanstalk")
    aws.set_polls_per_stage(1000)
    bucket = eb_api.create_storage_location(eb)
    s3_api.upload_bundle(ctx.client("s3"), bucket, "sifu/abc.zip", b"PK bundle")
    eb_api.create_application(eb, "sifu")
    eb_api.create_application_version(eb, "sifu", "abc", bucket, "sifu/abc.zip")
    eb_api.create_environment(eb, "sifu", "sifu-prod", eb_api.docker_platform_arn(eb), "abc", {})
    fake = FakeTime()
    with pytest.raises(eb_api.WaitTimeout, match="gave up waiting for sifu-prod after 60 s \\(still Launching\\)"):
        eb_api.wait_for_environment(eb, "sifu-prod", datetime(2000, 1, 1, tzinfo=UTC), timeout=60, interval=10,
                                    sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [10] * 6


def test_option_changes_and_current_options(aws):
    ctx = Aws(region="us-east-1")
    eb = ctx.client("elasticbeanstalk")
    _deployed_environment(aws, ctx, min_size=1)
    current = eb_api.current_options(eb, "sifu", "sifu-prod")
    desired = {("aws:autoscaling:asg", "MinSize"): "1",
               ("aws:autoscaling:launchconfiguration", "InstanceType"): "t3.large"}
    assert eb_api.option_changes(current, desired) == {
        ("aws:autoscaling:launchconfiguration", "InstanceType"): "t3.large"}
