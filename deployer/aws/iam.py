"""IAM: the EB instance role and instance profile, and its read access to ECR (step 3)."""

from __future__ import annotations

import json
from typing import Any

ECR_READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
# What EB's own console attaches to aws-elasticbeanstalk-ec2-role.
EB_WEB_TIER = "arn:aws:iam::aws:policy/AWSElasticBeanstalkWebTier"
EC2_TRUST_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}, separators=(",", ":"))


# -- check -------------------------------------------------------------------------------------------

def find_role(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return client.get_role(RoleName=name)["Role"]
    except client.exceptions.NoSuchEntityException:
        return None


def find_instance_profile(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return client.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except client.exceptions.NoSuchEntityException:
        return None


def attached_policy_arns(client: Any, role: str) -> set[str]:
    arns: set[str] = set()
    for page in client.get_paginator("list_attached_role_policies").paginate(RoleName=role):
        arns.update(p["PolicyArn"] for p in page["AttachedPolicies"])
    return arns


def instance_role_drift(client: Any, name: str, policy_arns: list[str]) -> list[str]:
    """What is missing: 'role', 'instance-profile', 'profile-role', or 'policy:<arn>' entries."""
    drift = []
    if find_role(client, name) is None:
        drift.append("role")
        attached: set[str] = set()
    else:
        attached = attached_policy_arns(client, name)
    profile = find_instance_profile(client, name)
    if profile is None:
        drift.append("instance-profile")
    if profile is None or name not in [r["RoleName"] for r in profile.get("Roles", [])]:
        drift.append("profile-role")
    drift += [f"policy:{arn}" for arn in policy_arns if arn not in attached]
    return drift


# -- apply -------------------------------------------------------------------------------------------

def attach_instance_role_policy(client: Any, role: str, policy_arn: str) -> None:
    client.attach_role_policy(RoleName=role, PolicyArn=policy_arn)


def ensure_instance_role(client: Any, name: str, policy_arns: list[str] | None = None) -> list[str]:
    """Role + instance profile of the same name, with the policies attached. Returns what was done."""
    policy_arns = policy_arns if policy_arns is not None else [ECR_READ_ONLY]
    done = []
    drift = instance_role_drift(client, name, policy_arns)
    if "role" in drift:
        try:
            client.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST_POLICY,
                               Description="Elastic Beanstalk instances (created by the Sifu deployer)")
            done.append(f"created role {name}")
        except client.exceptions.EntityAlreadyExistsException:
            pass
    if "instance-profile" in drift:
        try:
            client.create_instance_profile(InstanceProfileName=name)
            done.append(f"created instance profile {name}")
        except client.exceptions.EntityAlreadyExistsException:
            pass
    if "profile-role" in drift:
        try:
            client.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
            done.append(f"added role {name} to its instance profile")
        except client.exceptions.LimitExceededException:  # already has a role: AWS allows only one
            pass
    for item in drift:
        if item.startswith("policy:"):
            arn = item.split(":", 1)[1]
            attach_instance_role_policy(client, name, arn)
            done.append(f"attached {arn.rsplit('/', 1)[-1]} to {name}")
    return done
