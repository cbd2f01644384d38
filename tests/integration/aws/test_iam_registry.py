"""Issue 11 items 1, 11 and 12 on the emulated AWS: the instance role's inline policy, the strict instance checks
(sandbox/iam.py evaluates the role with moto's IAM evaluator), step 1's preflight, the registry's keep- tags,
and the registry in another region than the environment."""

from __future__ import annotations

import json

import pytest

from deployer.aws import iam
from deployer.checklist import registry
from tests.integration.aws.conftest import deploy_steps

pytestmark = pytest.mark.integration
ROLE = "aws-elasticbeanstalk-ec2-role"
BUCKET = "elasticbeanstalk-us-east-1-123456789012"


def first_steps() -> list:
    return [registry.Credentials(), registry.RegistryStatus(), registry.RegistryAccess(), registry.RegistryLogin()]


def without_step_3() -> list:
    return [s for s in deploy_steps() if not isinstance(s, registry.RegistryAccess)]


def strip_statement(aws, sid: str) -> None:
    """What an operator (or an old deployer) leaves behind: the inline policy without one statement."""
    client = aws.client("iam")
    document = client.get_role_policy(RoleName=ROLE, PolicyName=iam.INSTANCE_POLICY_NAME)["PolicyDocument"]
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != sid]
    client.put_role_policy(RoleName=ROLE, PolicyName=iam.INSTANCE_POLICY_NAME, PolicyDocument=json.dumps(document))


def eb_errors(aws) -> list[str]:
    events = aws.client("elasticbeanstalk").describe_events(EnvironmentName="sifu-notebooks-env")["Events"]
    return [e["Message"] for e in events if e["Severity"] == "ERROR"]


# -- item 1: the instance role -------------------------------------------------------------------------

def test_instance_role_gets_the_inline_policy_once_and_keeps_ecr_read_only(aws, deploy):
    report, _, _ = deploy(step_list=first_steps())
    assert report.failed is None, report.summary()
    client = aws.client("iam")
    document = client.get_role_policy(RoleName=ROLE, PolicyName=iam.INSTANCE_POLICY_NAME)["PolicyDocument"]
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["SourceBundleAndLogs"]["Resource"] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]
    assert statements["EnhancedHealth"]["Action"] == ["elasticbeanstalk:PutInstanceStatistics"]
    assert statements["EnvironmentSecrets"]["Resource"] == [
        "arn:aws:ssm:us-east-1:123456789012:parameter/sifu-notebooks/sifu-notebooks-env/*"]
    assert "SecretsKey" not in statements  # no customer key: parameters use aws/ssm
    assert [p["PolicyArn"] for p in client.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]] == [
        iam.ECR_READ_ONLY]
    again, _, _ = deploy(step_list=first_steps())
    assert again.counters.aws_mutate == 0 and again.summary() == "no changes"


def test_default_deploy_passes_the_instance_checks(aws, deploy):
    report, _, events = deploy()
    assert report.failed is None, report.summary()
    assert eb_errors(aws) == []
    assert "Successfully launched environment: sifu-notebooks-env" in "\n".join(events)


@pytest.mark.parametrize(("sid", "named"), [
    ("SourceBundleAndLogs", f"AccessDenied s3:GetObject on arn:aws:s3:::{BUCKET}/sifu-notebooks/"),
    ("EnvironmentSecrets", "AccessDenied ssm:GetParameter on arn:aws:ssm:us-east-1:123456789012:parameter/"
                           "sifu-notebooks/sifu-notebooks-env/"),
])
def test_instance_role_stripped_of_read_fails_environment_creation_naming_it(aws, deploy, sid, named):
    assert deploy(step_list=first_steps())[0].failed is None
    strip_statement(aws, sid)
    report, _, events = deploy(step_list=without_step_3())
    assert report.failed is not None and report.failed.number == "14d", report.summary()
    assert any(named in e for e in eb_errors(aws)), eb_errors(aws)
    assert any(named in line for line in events)  # streamed to the operator as EB's events
    action = named.split()[1]
    assert f"instance role {ROLE} lacks: {action} on" in report.steps[0].summary  # step 1 said so first
    env = aws.client("elasticbeanstalk").describe_environments(EnvironmentNames=["sifu-notebooks-env"])
    assert env["Environments"][0]["Health"] == "Red"


# -- step 1's preflight -------------------------------------------------------------------------------

def deploying_user(aws, monkeypatch, *statements: dict) -> str:
    """An IAM user with ``statements`` as its only policy; the deploy runs with its keys."""
    client = aws.client("iam")
    arn = client.create_user(UserName="deployer")["User"]["Arn"]
    client.put_user_policy(UserName="deployer", PolicyName="deploy", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))
    key = client.create_access_key(UserName="deployer")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    return arn


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def test_preflight_names_a_missing_permission_before_any_change(aws, deploy, monkeypatch):
    arn = deploying_user(aws, monkeypatch, ALLOW_ALL,
                         {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"})
    report, _, _ = deploy()
    assert report.failed is not None and report.failed.number == 1
    assert f"{arn} lacks 1 permission(s)" in report.failed.error
    assert f"s3:PutObject on arn:aws:s3:::{BUCKET}/* (step 14b)" in report.failed.error
    assert report.as_json()["aws_calls"]["mutate"] == 0


def test_preflight_stops_when_the_service_linked_role_cannot_be_created(aws, deploy, monkeypatch):
    deploying_user(aws, monkeypatch, ALLOW_ALL,
                   {"Effect": "Deny", "Action": "iam:CreateServiceLinkedRole", "Resource": "*"})
    report, _, _ = deploy(dry_run=True)
    assert report.failed is not None and report.failed.number == 1
    assert "aws iam create-service-linked-role --aws-service-name elasticbeanstalk.amazonaws.com" in \
        report.failed.error
    assert report.as_json()["aws_calls"]["mutate"] == 0


def test_preflight_passes_for_a_full_user_and_is_advisory_without_simulation(aws, deploy, monkeypatch):
    # moto's default caller is no IAM user: simulation cannot run, so the preflight says so and goes on.
    report, _, _ = deploy(dry_run=True, step_list=first_steps())
    assert report.failed is None
    assert "permissions not checked: IAM policy simulation is not available" in report.steps[0].summary
    deploying_user(aws, monkeypatch, ALLOW_ALL)
    report, _, _ = deploy(dry_run=True, step_list=first_steps())
    assert report.failed is None, report.summary()
    assert "holds every permission the deploy uses" in report.steps[0].summary
    assert "AWSServiceRoleForElasticBeanstalk missing: EB creates it" in report.steps[0].summary


# -- item 11: the registry keeps the images versions name -------------------------------------------------

def push(aws, tag: str) -> str:
    """An image in the emulated ECR (moto keeps the manifest; no registry behind it here)."""
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": f"sha256:{tag * 16}", "size": 1, "mediaType":
                                      "application/vnd.docker.container.image.v1+json"}, "layers": []})
    return aws.client("ecr").put_image(repositoryName="sifu-notebooks", imageManifest=manifest,
                                       imageTag=tag)["image"]["imageId"]["imageDigest"]


def keep_tags(aws) -> dict[str, set[str]]:
    """keep- tag -> the other tags of its image."""
    images = aws.client("ecr").describe_images(repositoryName="sifu-notebooks")["imageDetails"]
    return {t: {o for o in i.get("imageTags", []) if not o.startswith("keep-")}
            for i in images for t in i.get("imageTags", []) if t.startswith("keep-")}


def test_live_and_rollback_images_carry_keep_tags_and_the_policy_protects_them(aws, deploy):
    from deployer import environment

    assert deploy(step_list=first_steps())[0].failed is None
    for tag in ("aaaa", "bbbb", "cccc"):
        push(aws, tag)
    policy = json.loads(aws.client("ecr").get_lifecycle_policy(repositoryName="sifu-notebooks")["lifecyclePolicyText"])
    assert [(r["rulePriority"], r["selection"]["tagStatus"], r["selection"].get("tagPrefixList"))
            for r in policy["rules"]] == [(1, "tagged", ["keep-"]), (2, "any", None)]
    labels = []
    for tag in ("aaaa", "bbbb", "cccc"):
        report, ctx, _ = deploy(tag=tag, step_list=deploy_steps() + [registry.KeepImages()])
        assert report.failed is None, report.summary()
        labels.append(ctx.facts.version_label)
    # Live cccc and its rollback target bbbb are kept; aaaa's keep tag is gone, aaaa itself stays.
    assert keep_tags(aws) == {f"keep-{labels[2]}": {"cccc"}, f"keep-{labels[1]}": {"bbbb"}}
    again, _, _ = deploy(tag="cccc", step_list=deploy_steps() + [registry.KeepImages()])
    assert again.counters.aws_mutate == 0, again.counters.mutating_calls
    environment.rollback(ctx.settings, emit=lambda line: None)
    assert keep_tags(aws) == {f"keep-{labels[1]}": {"bbbb"}, f"keep-{labels[0]}": {"aaaa"}}


# -- item 12: the registry in another region than the environment (ECR-CROSS-REGION, unsettled) ---------

WEST = {"DEPLOY__EB__REGION": "us-west-1", "DEPLOY__EFS__REGION": "us-west-1"}


@pytest.fixture
def west(aws):
    aws.client("ec2", region="us-west-1").create_key_pair(KeyName="sifu-ops")


def test_a_registry_left_in_the_default_region_stops_step_1(aws, deploy, west):
    report, _, _ = deploy(**WEST)
    assert report.failed is not None and report.failed.number == 1
    assert "ecr.region is still its default us-east-1" in report.failed.error
    assert "Set ecr.region: us-west-1" in report.failed.error
    assert report.as_json()["aws_calls"]["mutate"] == 0


@pytest.fixture
def deploy_west(deploy, monkeypatch):
    """deploy_west(ecr_region): a deploy to us-west-1 whose Dockerrun names the image in ``ecr_region``."""
    from tests.integration.aws import conftest

    def run(ecr_region: str):
        monkeypatch.setattr(conftest, "IMAGE", f"123456789012.dkr.ecr.{ecr_region}.amazonaws.com/sifu-notebooks:")
        return deploy(DEPLOY__ECR__REGION=ecr_region, **WEST)
    return run


@pytest.mark.parametrize("pull", ["allowed", "refused"])
def test_same_region_layout_deploys_whatever_the_cross_region_answer(aws, deploy_west, west, pull):
    aws.control(region="us-west-1", cross_region_pull=pull)
    report, _, _ = deploy_west("us-west-1")
    assert report.failed is None, report.summary()
    assert "WARNING" not in report.steps[0].summary


def test_explicit_cross_region_layout_warns_and_deploys_when_pulls_work(aws, deploy_west, west):
    aws.control(region="us-west-1", cross_region_pull="allowed")
    report, _, _ = deploy_west("us-east-1")
    assert report.failed is None, report.summary()
    assert "WARNING: the registry is in another region than the environment" in report.steps[0].summary


def test_explicit_cross_region_layout_fails_at_creation_when_pulls_are_refused(aws, deploy_west, west):
    aws.control(region="us-west-1", cross_region_pull="refused")
    report, _, events = deploy_west("us-east-1")
    assert report.failed is not None and report.failed.number == "14d", report.summary()
    assert any("the registry is in us-east-1, the environment in us-west-1" in line for line in events)
