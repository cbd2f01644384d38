"""The emulated Elastic Beanstalk, exercised with real boto3 clients (botocore parses every response)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

AL2023_DOCKER = "Docker running on 64bit Amazon Linux 2023"
AWS_CLI = Path(sys.executable).with_name("aws")


def _docker_platform(eb) -> str:
    found = eb.list_platform_versions(Filters=[
        {"Type": "PlatformBranchName", "Operator": "=", "Values": [AL2023_DOCKER]},
        {"Type": "PlatformLifecycleState", "Operator": "=", "Values": ["Recommended"]},
    ])["PlatformSummaryList"]
    assert len(found) == 1
    return found[0]["PlatformArn"]


def _version(aws, eb, label: str, app: str = "sifu") -> None:
    bucket = eb.create_storage_location()["S3Bucket"]
    aws.client("s3").put_object(Bucket=bucket, Key=f"{app}/{label}.zip", Body=b"PK bundle " + label.encode())
    eb.create_application_version(ApplicationName=app, VersionLabel=label,
                                  SourceBundle={"S3Bucket": bucket, "S3Key": f"{app}/{label}.zip"})


def _poll_until_settled(eb, name: str, limit: int = 30) -> tuple[list[str], dict]:
    """Poll until the status settles and, when Ready, health has left Pending (EB-HEALTH-LAG)."""
    seen = []
    for _ in range(limit):
        env = eb.describe_environments(EnvironmentNames=[name])["Environments"][0]
        seen.append(env["Status"])
        if env["Status"] == "Terminated" or (env["Status"] == "Ready" and env["HealthStatus"] != "Pending"):
            return seen, env
    raise AssertionError(f"{name} never settled: {seen}")


@pytest.fixture
def eb(aws):
    client = aws.client("elasticbeanstalk")
    client.create_application(ApplicationName="sifu", Description="notebooks")
    return client


@pytest.fixture
def ready_env(aws, eb):
    _version(aws, eb, "v1")
    eb.create_environment(
        ApplicationName="sifu", EnvironmentName="sifu-prod", PlatformArn=_docker_platform(eb), VersionLabel="v1",
        CNAMEPrefix="sifu-prod-test",
        OptionSettings=[
            {"Namespace": "aws:autoscaling:launchconfiguration", "OptionName": "InstanceType", "Value": "t3.small"},
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "2"},
            {"Namespace": "aws:elasticbeanstalk:application:environment", "OptionName": "SIFU_PORT",
             "Value": "3334"},
        ])
    _poll_until_settled(eb, "sifu-prod")
    return "sifu-prod"


def test_storage_location_is_the_account_bucket_and_idempotent(aws, eb):
    first = eb.create_storage_location()["S3Bucket"]
    second = eb.create_storage_location()["S3Bucket"]
    assert first == second == "elasticbeanstalk-us-east-1-123456789012"
    assert first in [b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]]


def test_platforms_resolve_docker_on_al2023(eb):
    arn = _docker_platform(eb)
    assert arn.endswith("/Docker running on 64bit Amazon Linux 2023/4.6.0")
    description = eb.describe_platform_version(PlatformArn=arn)["PlatformDescription"]
    assert description["SolutionStackName"] == "64bit Amazon Linux 2023 v4.6.0 running Docker"
    newer = eb.list_platform_versions(Filters=[
        {"Type": "PlatformBranchName", "Operator": "=", "Values": [AL2023_DOCKER]},
        {"Type": "PlatformVersion", "Operator": ">=", "Values": ["4.5.0"]},
    ])["PlatformSummaryList"]
    assert sorted(p["PlatformVersion"] for p in newer) == ["4.5.2", "4.6.0"]
    with pytest.raises(ClientError, match="No Platform named"):
        eb.describe_platform_version(PlatformArn=arn + "9")


def test_application_version_needs_its_bundle_in_s3(aws, eb):
    bucket = eb.create_storage_location()["S3Bucket"]
    with pytest.raises(ClientError, match="Unable to download from S3 location"):
        eb.create_application_version(ApplicationName="sifu", VersionLabel="v1",
                                      SourceBundle={"S3Bucket": bucket, "S3Key": "missing.zip"})
    _version(aws, eb, "v1")
    _version(aws, eb, "v2")
    with pytest.raises(ClientError, match="already exists"):
        _version(aws, eb, "v1")
    labels = [v["VersionLabel"] for v in eb.describe_application_versions(ApplicationName="sifu")["ApplicationVersions"]]
    assert labels == ["v2", "v1"]  # newest first
    only = eb.describe_application_versions(ApplicationName="sifu", VersionLabels=["v1"])["ApplicationVersions"]
    assert [v["SourceBundle"]["S3Key"] for v in only] == ["sifu/v1.zip"]
    assert eb.describe_applications(ApplicationNames=["sifu"])["Applications"][0]["Versions"] == ["v2", "v1"]


def test_create_goes_launching_to_ready_over_several_polls(aws, eb):
    _version(aws, eb, "v1")
    created = eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-prod",
                                    PlatformArn=_docker_platform(eb), VersionLabel="v1", CNAMEPrefix="sifu-x")
    assert (created["Status"], created["Health"]) == ("Launching", "Grey")
    assert created["CNAME"] == "sifu-x.us-east-1.elasticbeanstalk.com"
    seen, env = _poll_until_settled(eb, "sifu-prod")
    assert seen.count("Launching") >= 3 and seen[-1] == "Ready"
    assert (env["Health"], env["HealthStatus"], env["VersionLabel"]) == ("Green", "Ok", "v1")
    assert env["SolutionStackName"] == "64bit Amazon Linux 2023 v4.6.0 running Docker"
    events = eb.describe_events(EnvironmentName="sifu-prod")["Events"]
    assert events[0]["Message"] == "Successfully launched environment: sifu-prod"  # newest first
    assert events[-1]["Message"] == "createEnvironment is starting."
    assert {e["RequestId"] for e in events} == {created["ResponseMetadata"]["RequestId"]}
    assert eb.check_dns_availability(CNAMEPrefix="sifu-x")["Available"] is False
    assert eb.check_dns_availability(CNAMEPrefix="sifu-y")["Available"] is True
    with pytest.raises(ClientError, match="not available"):
        eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-other",
                              PlatformArn=_docker_platform(eb), CNAMEPrefix="sifu-x")


def test_create_rejects_unknown_versions_options_and_duplicates(aws, eb, ready_env):
    platform = _docker_platform(eb)
    with pytest.raises(ClientError, match="No Application Version named 'nope'"):
        eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-two", PlatformArn=platform,
                              VersionLabel="nope")
    with pytest.raises(ClientError, match="Unknown configuration setting"):
        eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-two", PlatformArn=platform,
                              OptionSettings=[{"Namespace": "aws:autoscaling:asg", "OptionName": "MinSise",
                                               "Value": "1"}])
    with pytest.raises(ClientError, match="already exists"):
        eb.create_environment(ApplicationName="sifu", EnvironmentName=ready_env, PlatformArn=platform)


def test_instances_are_real_ec2_instances_tagged_with_the_environment(aws, eb, ready_env):
    resources = eb.describe_environment_resources(EnvironmentName=ready_env)["EnvironmentResources"]
    ids = sorted(i["Id"] for i in resources["Instances"])
    assert len(ids) == 2  # MinSize
    ec2 = aws.client("ec2")
    found = ec2.describe_instances(Filters=[
        {"Name": "tag:elasticbeanstalk:environment-name", "Values": [ready_env]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ])
    instances = [i for r in found["Reservations"] for i in r["Instances"]]
    assert sorted(i["InstanceId"] for i in instances) == ids
    assert {i["InstanceType"] for i in instances} == {"t3.small"}
    health = eb.describe_instances_health(EnvironmentName=ready_env, AttributeNames=["All"])["InstanceHealthList"]
    assert sorted(h["InstanceId"] for h in health) == ids and {h["Color"] for h in health} == {"Green"}
    assert {h["AvailabilityZone"] for h in health} == {i["Placement"]["AvailabilityZone"] for i in instances}
    assert all(i.get("PublicIpAddress") for i in instances)
    assert len({i["Placement"]["AvailabilityZone"] for i in instances}) == 2  # spread over AZs
    sg_ids = {g["GroupId"] for i in instances for g in i["SecurityGroups"]}
    assert len(sg_ids) == 1
    sg = ec2.describe_security_groups(GroupIds=list(sg_ids))["SecurityGroups"][0]
    assert "AWSEBSecurityGroup" in sg["GroupName"]


def test_option_settings_are_stored_and_described_back(eb, ready_env):
    settings = eb.describe_configuration_settings(ApplicationName="sifu", EnvironmentName=ready_env)
    options = {(o["Namespace"], o["OptionName"]): o["Value"]
               for o in settings["ConfigurationSettings"][0]["OptionSettings"]}
    assert options[("aws:autoscaling:launchconfiguration", "InstanceType")] == "t3.small"
    assert options[("aws:elasticbeanstalk:application:environment", "SIFU_PORT")] == "3334"
    assert options[("aws:elasticbeanstalk:environment", "LoadBalancerType")] == "application"  # a default


def test_instance_type_change_replaces_instances(aws, eb, ready_env):
    before = {i["Id"] for i in eb.describe_environment_resources(EnvironmentName=ready_env)
              ["EnvironmentResources"]["Instances"]}
    updated = eb.update_environment(EnvironmentName=ready_env, OptionSettings=[
        {"Namespace": "aws:autoscaling:launchconfiguration", "OptionName": "InstanceType", "Value": "t3.large"}])
    assert updated["Status"] == "Updating"
    with pytest.raises(ClientError, match="invalid state for this operation"):
        eb.update_environment(EnvironmentName=ready_env, Description="second update while busy")
    seen, env = _poll_until_settled(eb, ready_env)
    assert "Updating" in seen and env["Health"] == "Green"
    after = {i["Id"] for i in eb.describe_environment_resources(EnvironmentName=ready_env)
             ["EnvironmentResources"]["Instances"]}
    assert len(after) == 2 and not (after & before)
    ec2 = aws.client("ec2")
    states = {i["InstanceId"]: (i["State"]["Name"], i["InstanceType"])
              for r in ec2.describe_instances(InstanceIds=sorted(before | after))["Reservations"]
              for i in r["Instances"]}
    assert {states[i][0] for i in before} == {"terminated"}
    assert {states[i] for i in after} == {("running", "t3.large")}


def test_version_update_and_events_after_start_time(aws, eb, ready_env):
    _version(aws, eb, "v2")
    start = eb.describe_events(EnvironmentName=ready_env, MaxRecords=1)["Events"][0]["EventDate"]
    updated = eb.update_environment(EnvironmentName=ready_env, VersionLabel="v2")
    _, env = _poll_until_settled(eb, ready_env)
    assert env["VersionLabel"] == "v2"
    events = eb.describe_events(EnvironmentName=ready_env, StartTime=start)["Events"]
    messages = [e["Message"] for e in events]
    # StartTime is inclusive: the last launch event comes back, nothing older does.
    assert messages[-1] == "Successfully launched environment: sifu-prod"
    assert messages[0] == "Environment update completed successfully."
    assert "New application version was deployed to running EC2 instances." in messages
    ours = eb.describe_events(RequestId=updated["ResponseMetadata"]["RequestId"])["Events"]
    assert len(ours) == len(events) - 1
    dates = [e["EventDate"] for e in events]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) == len(dates)


def test_injected_failure_gives_error_events_and_rolls_back(aws, eb, ready_env):
    _version(aws, eb, "v2")
    aws.fail_next_deploy(ready_env, message="sifu exited with code 3")
    updated = eb.update_environment(EnvironmentName=ready_env, VersionLabel="v2")
    seen, env = _poll_until_settled(eb, ready_env)
    assert env["VersionLabel"] == "v1"  # rolled back
    errors = eb.describe_events(RequestId=updated["ResponseMetadata"]["RequestId"], Severity="ERROR")["Events"]
    assert [e["Message"] for e in errors][0] == "Failed to deploy application."
    assert any("sifu exited with code 3" in e["Message"] for e in errors)
    assert {e["Severity"] for e in errors} == {"ERROR"}
    # The failure was consumed: the next deploy of v2 succeeds.
    eb.update_environment(EnvironmentName=ready_env, VersionLabel="v2")
    _, env = _poll_until_settled(eb, ready_env)
    assert env["VersionLabel"] == "v2"


def test_launch_fails_plainly_when_the_instance_profile_is_missing(aws, eb):
    _version(aws, eb, "v1")
    eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-prod", PlatformArn=_docker_platform(eb),
                          VersionLabel="v1", OptionSettings=[
                              {"Namespace": "aws:autoscaling:launchconfiguration",
                               "OptionName": "IamInstanceProfile", "Value": "aws-elasticbeanstalk-ec2-role"}])
    _, env = _poll_until_settled(eb, "sifu-prod")
    assert env["Health"] == "Red"
    errors = [e["Message"] for e in eb.describe_events(EnvironmentName="sifu-prod", Severity="ERROR")["Events"]]
    assert any("instance profile aws-elasticbeanstalk-ec2-role" in m for m in errors)


def test_health_follows_the_lifecycle(aws, eb):
    _version(aws, eb, "v1")
    eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-prod", PlatformArn=_docker_platform(eb),
                          VersionLabel="v1")
    colours = []
    for _ in range(10):
        health = eb.describe_environment_health(EnvironmentName="sifu-prod", AttributeNames=["All"])
        colours.append(health["Color"])
    assert colours[0] == "Grey" and colours[-1] == "Green"
    assert health["InstancesHealth"]["Ok"] == 1


def test_polls_per_stage_slows_the_lifecycle(aws, eb):
    aws.set_polls_per_stage(3)
    _version(aws, eb, "v1")
    eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-prod", PlatformArn=_docker_platform(eb),
                          VersionLabel="v1")
    seen, _ = _poll_until_settled(eb, "sifu-prod", limit=40)
    assert seen.count("Launching") >= 12


def test_terminate_removes_instances_and_frees_the_name(aws, eb, ready_env):
    ids = [i["Id"] for i in eb.describe_environment_resources(EnvironmentName=ready_env)
           ["EnvironmentResources"]["Instances"]]
    assert eb.terminate_environment(EnvironmentName=ready_env)["Status"] == "Terminating"
    seen, env = _poll_until_settled(eb, ready_env)
    assert seen[-1] == "Terminated"
    found = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    assert {i["State"]["Name"] for r in found for i in r["Instances"]} == {"terminated"}
    assert eb.describe_environments(EnvironmentNames=[ready_env], IncludeDeleted=False)["Environments"] == []
    # The name and CNAME can be used again once terminated.
    assert eb.check_dns_availability(CNAMEPrefix="sifu-prod-test")["Available"] is True
    eb.create_environment(ApplicationName="sifu", EnvironmentName=ready_env, PlatformArn=_docker_platform(eb))


def test_reset_wipes_the_elastic_beanstalk_state(aws, eb, ready_env):
    aws.fail_next_deploy(ready_env)
    aws.reset()
    assert eb.describe_applications()["Applications"] == []
    assert eb.describe_events()["Events"] == []
    assert aws.control()["failures"] == []


def test_aws_cli_parses_the_responses(aws, eb, ready_env):
    out = subprocess.run([str(AWS_CLI), "elasticbeanstalk", "describe-environments", "--environment-names",
                          ready_env, "--output", "json"], capture_output=True, text=True, check=True,
                         env=os.environ.copy())
    env = json.loads(out.stdout)["Environments"][0]
    assert (env["Status"], env["VersionLabel"]) == ("Ready", "v1")
    out = subprocess.run([str(AWS_CLI), "elasticbeanstalk", "describe-events", "--environment-name", ready_env,
                          "--max-items", "2", "--output", "json"], capture_output=True, text=True, check=True,
                         env=os.environ.copy())
    assert len(json.loads(out.stdout)["Events"]) == 2


def test_our_rendered_option_settings_are_accepted_and_described_back(aws, eb, tmp_path):
    from deployer import config, render

    (tmp_path / "overrides.yml").write_text("{}\n")
    settings = config.load(environ={"DEPLOY__EB__KEY_NAME": "sifu-ops"}, overrides_file=tmp_path / "overrides.yml",
                           answers_file=tmp_path / "answers.yml").settings
    options = render.option_settings(render.render_all(settings, validate=False))
    aws.client("ec2").create_key_pair(KeyName="sifu-ops")
    # The instances use the profile's role (sandbox/iam.py evaluates it, IAM-INSTANCE-NEEDS): give it a role.
    iam = aws.client("iam")
    iam.create_role(RoleName=settings.eb.instance_profile, AssumeRolePolicyDocument="{}")
    iam.put_role_policy(RoleName=settings.eb.instance_profile, PolicyName="instances", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "s3:GetObject", "ssm:GetParameter", "ssm:GetParameters", "ecr:*", "elasticbeanstalk:PutInstanceStatistics"]}]}))
    iam.create_instance_profile(InstanceProfileName=settings.eb.instance_profile)
    iam.add_role_to_instance_profile(InstanceProfileName=settings.eb.instance_profile,
                                     RoleName=settings.eb.instance_profile)
    _version(aws, eb, "v1")
    eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-prod", PlatformArn=_docker_platform(eb),
                          VersionLabel="v1", OptionSettings=options)
    _, env = _poll_until_settled(eb, "sifu-prod")
    assert env["Health"] == "Green"
    described = {(o["Namespace"], o["OptionName"]): o["Value"] for o in eb.describe_configuration_settings(
        ApplicationName="sifu", EnvironmentName="sifu-prod")["ConfigurationSettings"][0]["OptionSettings"]}
    assert all(described[(o["Namespace"], o["OptionName"])] == o["Value"] for o in options)
    ids = [i["Id"] for i in eb.describe_environment_resources(EnvironmentName="sifu-prod")
           ["EnvironmentResources"]["Instances"]]
    found = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    assert {(i["InstanceType"], i["KeyName"]) for r in found for i in r["Instances"]} == {
        (settings.eb.instance_type, "sifu-ops")}


def test_extra_instance_security_groups_are_attached(aws, eb):
    ec2 = aws.client("ec2")
    sg = ec2.create_security_group(GroupName="sifu-instances", Description="ours")["GroupId"]
    _version(aws, eb, "v1")
    eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-prod", PlatformArn=_docker_platform(eb),
                          VersionLabel="v1", OptionSettings=[
                              {"Namespace": "aws:autoscaling:launchconfiguration", "OptionName": "SecurityGroups",
                               "Value": sg}])
    _poll_until_settled(eb, "sifu-prod")
    found = ec2.describe_instances(Filters=[{"Name": "tag:elasticbeanstalk:environment-name",
                                             "Values": ["sifu-prod"]}])["Reservations"]
    groups = [g["GroupId"] for r in found for i in r["Instances"] for g in i["SecurityGroups"]]
    assert sg in groups and len(groups) == 2


# -- issue 11: the emulator is as strict as AWS where our code depends on it -----------------------------

def _until_ready(eb, name: str) -> dict:
    for _ in range(30):
        env = eb.describe_environments(EnvironmentNames=[name])["Environments"][0]
        if env["Status"] == "Ready":
            return env
    raise AssertionError(f"{name} never became Ready")


def test_health_lags_ready_then_turns_green(aws, eb):
    """EB-HEALTH-LAG: Ready comes first, Green some polls later."""
    _version(aws, eb, "v1")
    eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-prod", PlatformArn=_docker_platform(eb),
                          VersionLabel="v1")
    env = _until_ready(eb, "sifu-prod")
    assert (env["Health"], env["HealthStatus"]) == ("Grey", "Pending")
    _, env = _poll_until_settled(eb, "sifu-prod")
    assert (env["Health"], env["HealthStatus"]) == ("Green", "Ok")


def test_environment_health_needs_attribute_names_and_reports_injected_causes(aws, eb):
    """EB-HEALTH-CAUSES: only the name without AttributeNames; an injected fault turns Red/Severe with causes."""
    aws.control(degrade_health={"environment_name": "sifu-prod", "causes": ["100 % of requests fail with 5xx."]})
    _version(aws, eb, "v1")
    eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-prod", PlatformArn=_docker_platform(eb),
                          VersionLabel="v1")
    _, env = _poll_until_settled(eb, "sifu-prod")
    assert (env["Health"], env["HealthStatus"]) == ("Red", "Severe")
    bare = eb.describe_environment_health(EnvironmentName="sifu-prod")
    assert set(bare) - {"ResponseMetadata"} == {"EnvironmentName"}
    full = eb.describe_environment_health(EnvironmentName="sifu-prod", AttributeNames=["All"])
    assert full["Causes"] == ["100 % of requests fail with 5xx."] and full["InstancesHealth"]["Severe"] == 1


def test_options_carry_resource_names_and_a_pending_draft_while_updating(eb, ready_env):
    """EB-OPTIONS-RESOURCENAME, EB-OPTIONS-DRAFT, EB-LAUNCH-TEMPLATE."""
    described = eb.describe_configuration_settings(ApplicationName="sifu", EnvironmentName=ready_env)
    options = described["ConfigurationSettings"][0]["OptionSettings"]
    by_key = {(o["Namespace"], o["OptionName"]): o.get("ResourceName") for o in options}
    assert by_key[("aws:autoscaling:asg", "MinSize")] == "AWSEBAutoScalingGroup"
    assert by_key[("aws:autoscaling:launchconfiguration", "InstanceType")] == "AWSEBAutoScalingLaunchConfiguration"
    assert by_key[("aws:elasticbeanstalk:environment", "EnvironmentType")] is None
    eb.update_environment(EnvironmentName=ready_env, OptionSettings=[
        {"Namespace": "aws:autoscaling:launchconfiguration", "OptionName": "DisableIMDSv1", "Value": "true"}])
    during = eb.describe_configuration_settings(ApplicationName="sifu", EnvironmentName=ready_env)
    assert [c["DeploymentStatus"] for c in during["ConfigurationSettings"]] == ["pending", "deployed"]
    _poll_until_settled(eb, ready_env)
    after = eb.describe_configuration_settings(ApplicationName="sifu", EnvironmentName=ready_env)
    [settings] = after["ConfigurationSettings"]
    launch = {o.get("ResourceName") for o in settings["OptionSettings"]
              if o["Namespace"] == "aws:autoscaling:launchconfiguration"}
    assert launch == {"AWSEBEC2LaunchTemplate"}


def test_update_with_a_new_version_and_settings_at_once_is_refused(aws, eb, ready_env):
    """EB-UPDATE-VERSION-AND-OPTIONS: the API reference says InvalidParameterCombination."""
    _version(aws, eb, "v2")
    with pytest.raises(ClientError, match="InvalidParameterCombination"):
        eb.update_environment(EnvironmentName=ready_env, VersionLabel="v2", OptionSettings=[
            {"Namespace": "aws:autoscaling:asg", "OptionName": "MaxSize", "Value": "3"}])


def test_an_https_listener_needs_a_certificate(aws, eb):
    """ALB-LISTENER-PORT: Protocol HTTPS without SSLCertificateArns is refused."""
    _version(aws, eb, "v1")
    with pytest.raises(ClientError, match="requires a certificate"):
        eb.create_environment(ApplicationName="sifu", EnvironmentName="sifu-prod", PlatformArn=_docker_platform(eb),
                              VersionLabel="v1", OptionSettings=[
                                  {"Namespace": "aws:elbv2:listener:3334", "OptionName": "Protocol", "Value": "HTTPS"}])


def test_platforms_come_in_pages(eb):
    """EB-PLATFORM-LIST-PAGINATED: one call returns a page and a NextToken, not the catalogue."""
    first = eb.list_platform_versions()
    assert len(first["PlatformSummaryList"]) <= 2 and first.get("NextToken")
    pages = eb.get_paginator("list_platform_versions").paginate()
    assert len([s for page in pages for s in page["PlatformSummaryList"]]) == 5
