"""The AWS half of `inv deploy`, end to end on the emulated AWS: the real step runner with our AWS steps,
the lead's Ports and RenderBundle steps, a real rendered bundle uploaded to S3, and EB's lifecycle."""

from __future__ import annotations

import json

import pytest

from tests.integration.aws.conftest import deploy_steps

pytestmark = pytest.mark.integration
IMAGE_STEPS = {"5", "6", "7", "10", "11"}


def test_first_deploy_creates_everything_then_nothing_changes(aws, deploy):
    plan, _, _ = deploy(dry_run=True)
    assert plan.failed is None and plan.counters.aws_mutate == 0
    planned = {(s.number, s.name) for s in plan.steps if s.status == "planned"}
    assert {(3, "Registry and instance role access"), (8, "Elastic Beanstalk application"),
            ("14a", "EFS file system"), ("14b", "Application version"),
            ("14c", "Create or update the environment")} <= planned
    report, ctx, events = deploy()
    assert report.failed is None, report.summary()
    assert "Successfully launched environment: sifu-notebooks-env" in "\n".join(events)  # streamed live
    eb = aws.client("elasticbeanstalk")
    env = eb.describe_environments(EnvironmentNames=["sifu-notebooks-env"])["Environments"][0]
    assert (env["Status"], env["Health"], env["VersionLabel"]) == ("Ready", "Green", ctx.facts.version_label)
    assert env["PlatformArn"].endswith("Docker running on 64bit Amazon Linux 2023/4.6.0")
    # The instances carry our security group, the one EFS admits NFS from.
    ids = [i["Id"] for i in eb.describe_environment_resources(EnvironmentName="sifu-notebooks-env")
           ["EnvironmentResources"]["Instances"]]
    groups = {g["GroupId"] for r in aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
              for i in r["Instances"] for g in i["SecurityGroups"]}
    assert ctx.facts.instance_security_group in groups
    again, _, _ = deploy()
    assert again.summary() == "no changes", [(s.number, s.status, s.actions) for s in again.steps]
    assert again.counters.aws_mutate == 0


def test_changing_only_the_instance_type_is_one_environment_update(aws, deploy):
    assert deploy()[0].failed is None
    report, _, _ = deploy(DEPLOY__EB__INSTANCE_TYPE="t3.large")
    assert report.failed is None, report.summary()
    assert report.counters.mutating_calls == ["elasticbeanstalk.UpdateEnvironment"]
    changed = {s.number: s.actions for s in report.steps if s.status == "changed"}
    assert changed["14c"] == ["set aws:ec2:instances InstanceTypes (t3.large)"]
    eb = aws.client("elasticbeanstalk")
    ids = [i["Id"] for i in eb.describe_environment_resources(EnvironmentName="sifu-notebooks-env")
           ["EnvironmentResources"]["Instances"]]
    types = {i["InstanceType"] for r in aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
             for i in r["Instances"]}
    assert types == {"t3.large"}


def test_an_injected_failure_fails_the_deploy_with_eb_errors_and_rolls_back(aws, deploy):
    first, ctx, _ = deploy()
    assert first.failed is None
    good = ctx.facts.version_label
    aws.fail_next_deploy("sifu-notebooks-env", message="sifu: cannot import name 'app'")
    report, ctx, events = deploy(tag="bbbb")  # a new image, hence a new bundle and version
    assert report.failed is not None and report.failed.number == "14d"
    assert "sifu: cannot import name 'app'" in report.failed.error
    assert "Failed to deploy application." in report.failed.error
    assert any("ERROR" in line and "Instance deployment failed" in line for line in events)
    env = aws.client("elasticbeanstalk").describe_environments(
        EnvironmentNames=["sifu-notebooks-env"])["Environments"][0]
    assert env["VersionLabel"] == good != ctx.facts.version_label
    assert "oauth-secret" not in json.dumps(report.as_json())


def test_an_interrupted_deploy_converges_on_the_next_run(aws, deploy):
    # Killed right after asking EB to create the environment (before waiting): the next run waits for that
    # environment instead of creating another, and the run after that has nothing to do.
    stopped, _, _ = deploy(step_list=deploy_steps()[:-1])
    assert stopped.failed is None
    eb = aws.client("elasticbeanstalk")
    assert eb.describe_environments(EnvironmentNames=["sifu-notebooks-env"])["Environments"][0]["Status"] == "Launching"
    resumed, _, events = deploy()
    assert resumed.failed is None, resumed.summary()
    assert resumed.counters.mutating_calls == []
    assert any("Successfully launched environment" in line for line in events)
    final, _, _ = deploy()
    assert final.summary() == "no changes"
    assert len(eb.describe_environments(IncludeDeleted=False)["Environments"]) == 1
    assert len(eb.describe_application_versions(ApplicationName="sifu-notebooks")["ApplicationVersions"]) == 1


def _resource_counts(aws) -> dict[str, int]:
    ec2, efs, eb = aws.client("ec2"), aws.client("efs"), aws.client("elasticbeanstalk")
    systems = efs.describe_file_systems()["FileSystems"]
    groups = ec2.describe_security_groups()["SecurityGroups"]
    return {
        "repositories": len(aws.client("ecr").describe_repositories()["repositories"]),
        "environments": len(eb.describe_environments(IncludeDeleted=False)["Environments"]),
        "versions": len(eb.describe_application_versions()["ApplicationVersions"]),
        "file_systems": len(systems),
        "mount_targets": sum(len(efs.describe_mount_targets(FileSystemId=f["FileSystemId"])["MountTargets"])
                             for f in systems),
        "security_groups": len(groups),
        "ingress_rules": sum(len(g["IpPermissions"]) for g in groups),
        "parameters": len(aws.client("ssm").describe_parameters()["Parameters"]),
        "instances": sum(1 for r in ec2.describe_instances(Filters=[
            {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for _ in r["Instances"]),
    }


def test_stopped_after_any_step_a_rerun_matches_a_clean_run(aws, deploy):
    assert deploy()[0].failed is None
    clean = _resource_counts(aws)
    names = [s.name for s in deploy_steps()]
    # Stop after each step that changes AWS, then run the whole checklist again.
    for stop_after in ("Registry and instance role access", "Elastic Beanstalk application", "EFS file system",
                       "Secrets in SSM", "Application version", "Create or update the environment"):
        aws.reset()
        aws.client("ec2").create_key_pair(KeyName="sifu-ops")
        stopped = deploy(step_list=deploy_steps()[: names.index(stop_after) + 1])[0]
        assert stopped.failed is None, (stop_after, stopped.summary())
        resumed = deploy()[0]
        assert resumed.failed is None, (stop_after, resumed.summary())
        assert _resource_counts(aws) == clean, stop_after


def test_the_whole_checklist_plans_on_a_fresh_account_with_zero_mutations(aws, deploy):
    from deployer import checklist

    # Without the image steps, which need a Docker engine: tests/integration/deploy runs them.
    full = [s for s in checklist.deploy_steps() if str(s.number) not in IMAGE_STEPS]
    report, _, _ = deploy(dry_run=True, step_list=full)
    data = report.as_json()
    assert data["aws_calls"]["mutate"] == 0 and data["mutating_calls"] == []
    numbers = {str(s["number"]) for s in data["steps"]}
    assert {str(n) for n in range(1, 14)} - IMAGE_STEPS <= numbers and {"14a", "14b", "14c", "14d"} <= numbers
    assert not [s for s in data["steps"] if s["status"] == "pending"]
    assert data["result"] == "changes"


# -- issue 11: the deploy against what AWS really does ----------------------------------------------------

ENV = "sifu-notebooks-env"


def _options(aws) -> dict:
    described = aws.client("elasticbeanstalk").describe_configuration_settings(
        ApplicationName="sifu-notebooks", EnvironmentName=ENV)["ConfigurationSettings"]
    return {(o["Namespace"], o["OptionName"]): o for o in described[0]["OptionSettings"]}


def test_the_second_deploy_is_a_no_op_with_resource_named_options(aws, deploy):
    """Item 6 (EB-OPTIONS-RESOURCENAME): options described with a ResourceName are still ours."""
    assert deploy()[0].failed is None
    options = _options(aws)
    assert options[("aws:autoscaling:asg", "MaxSize")]["ResourceName"] == "AWSEBAutoScalingGroup"
    again, _, _ = deploy()
    assert again.counters.aws_mutate == 0 and again.summary() == "no changes", again.counters.mutating_calls
    # DisableIMDSv1 moved the environment to a launch template (item 7, EB-LAUNCH-TEMPLATE).
    assert options[("aws:autoscaling:launchconfiguration", "DisableIMDSv1")] == {
        "ResourceName": "AWSEBEC2LaunchTemplate", "Namespace": "aws:autoscaling:launchconfiguration",
        "OptionName": "DisableIMDSv1", "Value": "true"}


def test_current_options_are_the_deployed_ones_while_an_update_runs(aws, deploy):
    """Item 6 (EB-OPTIONS-DRAFT): a pending draft is described first; the deployed set is what runs."""
    from deployer.aws import eb as eb_api

    assert deploy()[0].failed is None
    eb = aws.client("elasticbeanstalk")
    eb_api.update_environment(eb, ENV, options={("aws:ec2:instances", "InstanceTypes"): "t3.large"})
    current = eb_api.current_options(eb, "sifu-notebooks", ENV)
    assert current[("aws:ec2:instances", "InstanceTypes")] == "t3.small"
    assert current[("aws:autoscaling:asg", "MinSize")] == "1"


def test_the_wait_holds_for_green_and_red_fails_with_ebs_causes(aws, deploy):
    """Item 5 (EB-HEALTH-LAG, EB-HEALTH-CAUSES): Ready is not yet Green; Red fails with the causes."""
    aws.control(health_lag_polls=6)
    report, _, events = deploy()
    assert report.failed is None, report.summary()
    assert "Successfully launched environment: sifu-notebooks-env" in "\n".join(events)
    aws.control(degrade_health={"environment_name": ENV, "causes": ["100.0 % of the requests are failing with HTTP 5xx."]})
    failed, _, _ = deploy(tag="bbbb")
    assert failed.failed is not None and failed.failed.number == "14d"
    assert "turned Red" in failed.failed.error
    assert "100.0 % of the requests are failing with HTTP 5xx." in failed.failed.error
    assert "1 Severe" in failed.failed.error


def test_the_urls_name_the_environments_real_cname(aws, deploy):
    """Item 3 (EB-CNAME-SUFFIX, EB-CNAME-CHECKDNS): a new environment is created with our prefix and the bundle
    names what CheckDNSAvailability gave; an existing one (here: made without a prefix, so with EB's random part)
    keeps its own CNAME, and the URLs follow it."""
    report, ctx, _ = deploy()
    assert report.failed is None
    env = aws.client("elasticbeanstalk").describe_environments(EnvironmentNames=[ENV])["Environments"][0]
    assert env["CNAME"] == "sifu-notebooks-sifu-notebooks-env.us-east-1.elasticbeanstalk.com" == ctx.facts.cname
    properties = {k[1]: o["Value"] for k, o in _options(aws).items()
                  if k[0] == "aws:elasticbeanstalk:application:environment"}
    assert properties["SIFU_JUPYTER_URL"] == f"http://{env['CNAME']}:3335"

    aws.reset()
    aws.client("ec2").create_key_pair(KeyName="sifu-ops")
    eb = aws.client("elasticbeanstalk")
    eb.create_application(ApplicationName="sifu-notebooks")
    from deployer.aws import eb as eb_api
    eb.create_environment(ApplicationName="sifu-notebooks", EnvironmentName=ENV,
                          PlatformArn=eb_api.docker_platform_arn(eb))
    for _ in range(20):
        eb.describe_environments(EnvironmentNames=[ENV])
    cname = eb.describe_environments(EnvironmentNames=[ENV])["Environments"][0]["CNAME"]
    assert ".eba-" in cname
    report, ctx, _ = deploy()
    assert report.failed is None, report.summary()
    properties = {k[1]: o["Value"] for k, o in _options(aws).items()
                  if k[0] == "aws:elasticbeanstalk:application:environment"}
    assert properties["SIFU_JUPYTER_URL"] == f"http://{cname}:3335"
    assert properties["SIFU_FRAME_ANCESTORS"].endswith(f"http://{cname}:3334")


def test_a_taken_cname_prefix_stops_at_step_9_naming_the_setting(aws, deploy):
    """Item 3 (EB-CNAME-CHECKDNS): checked before anything is created."""
    eb = aws.client("elasticbeanstalk")
    eb.create_application(ApplicationName="other")
    from deployer.aws import eb as eb_api
    eb.create_environment(ApplicationName="other", EnvironmentName="other-env",
                          PlatformArn=eb_api.docker_platform_arn(eb), CNAMEPrefix="sifu-notebooks-sifu-notebooks-env")
    report, _, _ = deploy(dry_run=True)
    assert report.failed is not None and report.failed.number == 9
    assert "eb.cname_prefix" in report.failed.error
    assert deploy(DEPLOY__EB__CNAME_PREFIX="sifu-course-42")[0].failed is None
    env = eb.describe_environments(EnvironmentNames=[ENV])["Environments"][0]
    assert env["CNAME"] == "sifu-course-42.us-east-1.elasticbeanstalk.com"


def test_a_new_version_with_new_settings_is_two_updates(aws, deploy):
    """EB-UPDATE-VERSION-AND-OPTIONS: EB refuses both in one UpdateEnvironment; settings go first."""
    assert deploy()[0].failed is None
    report, ctx, _ = deploy(tag="bbbb", DEPLOY__EB__INSTANCE_TYPE="t3.large")
    assert report.failed is None, report.summary()
    assert report.counters.mutating_calls.count("elasticbeanstalk.UpdateEnvironment") == 2
    env = aws.client("elasticbeanstalk").describe_environments(EnvironmentNames=[ENV])["Environments"][0]
    assert env["VersionLabel"] == ctx.facts.version_label
    assert _options(aws)[("aws:ec2:instances", "InstanceTypes")]["Value"] == "t3.large"


def test_the_load_balancer_has_our_group_and_the_instances_admit_it(aws, deploy):
    """Item 12 (EB-LB-SG, EB-LB-MANAGED-SG): no reliance on AWSEBLoadBalancerSecurityGroup (custom VPCs only)."""
    report, ctx, _ = deploy()
    assert report.failed is None
    ec2 = aws.client("ec2")
    lb_id = ctx.facts.load_balancer_security_group
    lb = ec2.describe_security_groups(GroupIds=[lb_id])["SecurityGroups"][0]
    assert lb["GroupName"] == "sifu-notebooks-sifu-notebooks-env-lb"
    assert {p["FromPort"] for p in lb["IpPermissions"]} == {80, 3334, 3335}
    instances = ec2.describe_security_groups(GroupIds=[ctx.facts.instance_security_group])["SecurityGroups"][0]
    from_lb = {p["FromPort"] for p in instances["IpPermissions"] for g in p["UserIdGroupPairs"] if g["GroupId"] == lb_id}
    assert from_lb == {3334, 3335}
    # Jupyter between instances (the kernel's instance, .nginx/vhost.conf.j2): from the instances' own group only.
    peers = [(p["FromPort"], g["GroupId"]) for p in instances["IpPermissions"] for g in p["UserIdGroupPairs"]
             if p["FromPort"] == 3336]
    assert peers == [(3336, instances["GroupId"])]
    assert not any(r.get("CidrIp") for p in instances["IpPermissions"] if p["FromPort"] == 3336 for r in p["IpRanges"])
    options = _options(aws)
    assert options[("aws:elbv2:loadbalancer", "SecurityGroups")]["Value"] == lb_id
    assert options[("aws:elbv2:loadbalancer", "ManagedSecurityGroup")]["Value"] == lb_id
