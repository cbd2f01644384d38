"""IAM: the EB instance role and instance profile with what the instances need (step 3); the deploying
identity's permissions and EB's service-linked role (step 1's preflight)."""

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
# The inline policy on the instance role: what an EB instance does besides pulling the image (IAM-INSTANCE-NEEDS).
INSTANCE_POLICY_NAME = "sifu-instance"
EB_SERVICE_LINKED_ROLE = "AWSServiceRoleForElasticBeanstalk"
EB_SERVICE_NAME = "elasticbeanstalk.amazonaws.com"


def instance_policy(region: str, account: str, application: str, environment: str, parameter_path: str,
                    kms_key_arn: str = "") -> str:
    """The instance role's inline policy (pure; compared as text, like the ECR lifecycle policy):
    - the EB bucket: read the source bundle, write log bundles (IAM-WEBTIER narrowed to our one bucket; which
      keys EB uses is not documented, so not narrower);
    - enhanced health statistics for our application and environment (IAM-HEALTH-STATS);
    - our parameters for ``environmentsecrets``, on our path only; GetParameter and GetParameters, as the
      source does not say which EB calls (IAM-ENVSECRETS-SSM);
    - ``kms:Decrypt`` only for a customer managed key (IAM-ENVSECRETS-KMS; our parameters use aws/ssm)."""
    bucket = f"arn:aws:s3:::elasticbeanstalk-{region}-{account}"
    eb_arn = f"arn:aws:elasticbeanstalk:{region}:{account}"
    statements: list[dict[str, Any]] = [
        {"Sid": "SourceBundleAndLogs", "Effect": "Allow", "Action": ["s3:Get*", "s3:List*", "s3:PutObject"],
         "Resource": [bucket, f"{bucket}/*"]},
        {"Sid": "EnhancedHealth", "Effect": "Allow", "Action": ["elasticbeanstalk:PutInstanceStatistics"],
         "Resource": [f"{eb_arn}:application/{application}", f"{eb_arn}:environment/{application}/{environment}"]},
        {"Sid": "EnvironmentSecrets", "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:GetParameters"],
         "Resource": [f"arn:aws:ssm:{region}:{account}:parameter{parameter_path.rstrip('/')}/*"]},
    ]
    if kms_key_arn:
        statements.append({"Sid": "SecretsKey", "Effect": "Allow", "Action": ["kms:Decrypt"],
                           "Resource": [kms_key_arn]})
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True, separators=(",", ":"))


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


def inline_policy(client: Any, role: str, policy_name: str) -> dict[str, Any] | None:
    """A role's inline policy document (parsed), or None."""
    try:
        document = client.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    except client.exceptions.NoSuchEntityException:
        return None
    return json.loads(document) if isinstance(document, str) else document


def instance_role_drift(client: Any, name: str, policy_arns: list[str], inline: str | None = None) -> list[str]:
    """What is missing: 'role', 'instance-profile', 'profile-role', 'policy:<arn>' entries, and
    'inline-policy' when the role's ``INSTANCE_POLICY_NAME`` document differs from ``inline``."""
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
    if inline is not None and ("role" in drift or inline_policy(client, name, INSTANCE_POLICY_NAME) != json.loads(inline)):
        drift.append("inline-policy")
    return drift


# -- apply -------------------------------------------------------------------------------------------

def attach_instance_role_policy(client: Any, role: str, policy_arn: str) -> None:
    client.attach_role_policy(RoleName=role, PolicyArn=policy_arn)


def ensure_instance_role(client: Any, name: str, policy_arns: list[str] | None = None,
                         inline: str | None = None) -> list[str]:
    """Role + instance profile of the same name, with the policies attached and the inline policy ``inline``
    (``INSTANCE_POLICY_NAME``) in place. Returns what was done."""
    policy_arns = policy_arns if policy_arns is not None else [ECR_READ_ONLY]
    done = []
    drift = instance_role_drift(client, name, policy_arns, inline)
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
    if "inline-policy" in drift and inline is not None:
        client.put_role_policy(RoleName=name, PolicyName=INSTANCE_POLICY_NAME, PolicyDocument=inline)
        done.append(f"set inline policy {INSTANCE_POLICY_NAME} on {name}")
    return done


# -- the deploying identity (step 1, reads only) ------------------------------------------------------

def principal_arn(client: Any, caller_arn: str) -> str:
    """The IAM ARN SimulatePrincipalPolicy takes for a caller: an assumed-role session
    (arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION) becomes its role's ARN (IAM-SIMULATE)."""
    if ":assumed-role/" in caller_arn:
        return client.get_role(RoleName=caller_arn.split(":assumed-role/", 1)[1].split("/", 1)[0])["Role"]["Arn"]
    return caller_arn


def denied_actions(client: Any, principal: str, actions: list[str], resource: str,
                   context: dict[str, str] | None = None) -> list[str]:
    """The actions of ``actions`` the principal's policies do not allow on ``resource`` (IAM policy simulation;
    performs nothing, IAM-SIMULATE). Raises the SDK's error when simulation itself is refused."""
    entries = [{"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
               for k, v in (context or {}).items()]
    denied = []
    for page in client.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=principal, ActionNames=actions, ResourceArns=[resource], ContextEntries=entries):
        denied += [r["EvalActionName"] for r in page["EvaluationResults"] if r["EvalDecision"] != "allowed"]
    return denied
