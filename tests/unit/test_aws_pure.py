"""Pure helpers of deployer/aws: classification, policy text, diffs over describe results."""

import json

from deployer.aws import CallCounter, classify
from deployer.aws import eb as eb_api
from deployer.aws import ec2 as ec2_api
from deployer.aws import ecr as ecr_api
from deployer.aws import efs as efs_api


def test_classify_reads_and_mutations():
    assert classify("DescribeEvents") == "read"
    assert classify("GetAuthorizationToken") == "read"
    assert classify("CreateStorageLocation") == "mutate"
    assert classify("RebuildEnvironment") == "mutate"  # unknown verbs count as mutations


def test_counter_as_dict():
    counter = CallCounter()
    for service, op in [("ecr", "DescribeRepositories"), ("ecr", "CreateRepository"), ("ecr", "DescribeRepositories")]:
        counter.record(service, op)
    assert counter.as_dict() == {"read": 2, "mutate": 1, "operations": {"ecr.CreateRepository": 1,
                                                                          "ecr.DescribeRepositories": 2}}
    assert counter.mutations() == {"ecr.CreateRepository": 1}


def test_lifecycle_policy_text():
    rules = json.loads(ecr_api.lifecycle_policy(7))["rules"]
    assert [r["rulePriority"] for r in rules] == [1, 2]
    assert rules[0]["selection"] == {"tagStatus": "tagged", "tagPrefixList": ["keep-"],
                                     "countType": "imageCountMoreThan", "countNumber": 1000}
    assert rules[1]["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 7}
    assert ecr_api.lifecycle_policy(7) == ecr_api.lifecycle_policy(7)  # stable text: compared as text


def test_option_changes_and_settings():
    current = {("aws:ec2:instances", "InstanceTypes"): "t3.small", ("aws:autoscaling:asg", "MinSize"): "1"}
    desired = {("aws:ec2:instances", "InstanceTypes"): "t3.large", ("aws:autoscaling:asg", "MinSize"): "1"}
    assert eb_api.option_changes(current, desired) == {("aws:ec2:instances", "InstanceTypes"): "t3.large"}
    assert eb_api.option_settings(desired) == [
        {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "1"},
        {"Namespace": "aws:ec2:instances", "OptionName": "InstanceTypes", "Value": "t3.large"},
    ]
    assert eb_api.storage_bucket("eu-west-1", "111122223333") == "elasticbeanstalk-eu-west-1-111122223333"


def test_security_group_rule_reading():
    group = {"IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": "sg-inst"}],
         "IpRanges": []},
    ]}
    assert ec2_api.allows_from_group(group, 2049, "sg-inst")
    assert not ec2_api.allows_from_group(group, 2049, "sg-other")
    assert not ec2_api.allows_from_group(group, 22, "sg-inst")
    assert not ec2_api.open_to_world(group)
    group["IpPermissions"].append({"IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049,
                                   "IpRanges": [{"CidrIp": "0.0.0.0/0"}]})
    assert ec2_api.open_to_world(group)


def test_missing_zones():
    targets = [{"AvailabilityZoneName": "us-east-1a", "SubnetId": "subnet-a"}]
    assert efs_api.missing_zones(targets, {"us-east-1a": "subnet-a", "us-east-1b": "subnet-b"}) == {
        "us-east-1b": "subnet-b"}


def test_security_groups_compare_as_a_subset_of_what_eb_describes():
    key = ("aws:autoscaling:launchconfiguration", "SecurityGroups")
    current = {key: "sg-ebcreated,sg-ours"}
    assert eb_api.option_changes(current, {key: "sg-ours"}) == {}
    assert eb_api.option_changes(current, {key: "sg-other"}) == {key: "sg-other"}
