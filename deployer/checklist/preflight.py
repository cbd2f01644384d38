"""Step 1's preflight (reads only): which permissions the deploying identity lacks for the steps it will run,
by IAM policy simulation (IAM-SIMULATE), and whether Elastic Beanstalk's service-linked role exists or may be
created (IAM-SLR-EB). Simulation is advisory: where the account refuses it (or it is not implemented), the
preflight says so and the deploy goes on."""

from __future__ import annotations

from typing import Any

from deployer import names
from deployer.aws import error_code, error_message, iam, sdk_errors
from deployer.checklist.context import Context
from deployer.config import Settings
from deployer.render import secret_parameter_names
from deployer.steps import StepError

# (steps, resource, actions). Resources use these placeholders: {region}, {ecr_region}, {account}.
Needed = tuple[str, str, tuple[str, ...]]


def needed_permissions(s: Settings, account: str) -> list[Needed]:
    """What the deploy's steps call, on which resources (pure), and iam:PassRole on the instance role
    (IAM-PASSROLE). Not listed: the CloudFormation, EC2 and Auto Scaling calls EB makes while it creates or
    updates the environment. Whether those need the caller's own permissions is not settled by the guides
    (EB's managed user policy grants them; IAM-EB-DOWNSTREAM), so a missing one still surfaces as EB's
    ERROR events at 14d rather than here."""
    region, ecr_region = s.eb.region, s.ecr.region
    role = f"arn:aws:iam::{account}:role/{s.eb.instance_profile}"
    bucket = f"arn:aws:s3:::elasticbeanstalk-{region}-{account}"
    eb_arn = f"arn:aws:elasticbeanstalk:{region}:{account}"
    repo = f"arn:aws:ecr:{ecr_region}:{account}:repository/{s.ecr.repository}"
    params = f"arn:aws:ssm:{region}:{account}:parameter{names.secret_parameters_path(s)}/*"
    needed: list[Needed] = [
        ("2-4, 7", repo, ("ecr:DescribeRepositories", "ecr:CreateRepository", "ecr:PutLifecyclePolicy",
                          "ecr:GetLifecyclePolicy", "ecr:PutImageScanningConfiguration",
                          "ecr:PutImageTagMutability", "ecr:DescribeImages", "ecr:BatchGetImage",
                          "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
                          "ecr:BatchCheckLayerAvailability", "ecr:PutImage", "ecr:BatchDeleteImage")),
        ("4", "*", ("ecr:GetAuthorizationToken",)),
        ("3, 14c", role, ("iam:GetRole", "iam:CreateRole", "iam:AttachRolePolicy", "iam:PutRolePolicy",
                          "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:PassRole")),
        ("3", f"arn:aws:iam::{account}:instance-profile/{s.eb.instance_profile}",
         ("iam:GetInstanceProfile", "iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile")),
        ("8, 14b", "*", ("elasticbeanstalk:CreateStorageLocation",)),
        ("8", f"{eb_arn}:application/{s.eb.application}", ("elasticbeanstalk:CreateApplication",)),
        ("14b", f"{eb_arn}:applicationversion/{s.eb.application}/*", ("elasticbeanstalk:CreateApplicationVersion",)),
        ("14c", f"{eb_arn}:environment/{s.eb.application}/{s.eb.environment}",
         ("elasticbeanstalk:CreateEnvironment", "elasticbeanstalk:UpdateEnvironment")),
        ("14b", f"{bucket}/*", ("s3:PutObject", "s3:GetObject")),
        ("1, 14a", "*", ("ec2:DescribeKeyPairs", "ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress")),
        ("14a", params, ("ssm:PutParameter", "ssm:GetParameter")),
    ]
    if s.storage.kind == "efs" and not s.efs.file_system_id:
        needed.append(("14a", "*", ("elasticfilesystem:CreateFileSystem", "elasticfilesystem:CreateMountTarget")))
    if s.rds.mode == "managed":
        needed.append(("14a", f"arn:aws:rds:{region}:{account}:db:{names.database_identifier(s)}",
                       ("rds:CreateDBInstance",)))
    return needed


def check(ctx: Context, caller_arn: str, account: str) -> str:
    """The preflight's note for step 1's report; a StepError (before any change) when the caller lacks
    something the deploy needs, or the service-linked role is missing and may not be created."""
    client = ctx.aws().client("iam")
    try:
        principal = iam.principal_arn(client, caller_arn)
        lacking = [f"{action} on {resource} (step {steps})"
                   for steps, resource, actions in needed_permissions(ctx.settings, account)
                   for action in iam.denied_actions(client, principal, list(actions), resource)]
    except sdk_errors() as exc:
        principal, lacking = "", []
        simulated = (f"permissions not checked: IAM policy simulation is not available to {caller_arn} "
                     f"({error_code(exc) or type(exc).__name__}: {error_message(exc)}); the deploy goes on")
    else:
        simulated = f"IAM policy simulation: {principal} holds every permission the deploy uses"
    if lacking:
        raise StepError(f"{principal} lacks {len(lacking)} permission(s) the deploy needs (IAM policy simulation; "
                        "nothing was changed):\n  " + "\n  ".join(lacking))
    return f"{simulated}; {_service_linked_role(client, principal, account)}; {_instance_role(ctx, client, account)}"


def instance_needs(s: Settings, account: str) -> list[Needed]:
    """What an instance does with its profile when a version is deployed (IAM-INSTANCE-NEEDS; pure)."""
    region = s.eb.region
    bucket = f"arn:aws:s3:::elasticbeanstalk-{region}-{account}"
    repo = f"arn:aws:ecr:{s.ecr.region}:{account}:repository/{s.ecr.repository}"
    needed: list[Needed] = [
        ("14c", f"{bucket}/{names.bundle_key(s, 'VERSION')}", ("s3:GetObject",)),
        ("14c", "*", ("ecr:GetAuthorizationToken",)),
        ("14c", repo, ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")),
        ("14d", f"arn:aws:elasticbeanstalk:{region}:{account}:environment/{s.eb.application}/{s.eb.environment}",
         ("elasticbeanstalk:PutInstanceStatistics",)),
    ]
    needed += [("14c", f"arn:aws:ssm:{region}:{account}:parameter{name}", ("ssm:GetParameter", "ssm:GetParameters"))
               for name in secret_parameter_names(s).values()]
    return needed


def _instance_role(ctx: Context, client: Any, account: str) -> str:
    """A note on what the existing instance role lacks (advisory: step 3 grants it, unless something it does not
    manage, such as a Deny policy, takes it away again)."""
    s = ctx.settings
    try:
        role = iam.find_role(client, s.eb.instance_profile)
        if role is None:
            return f"instance role {s.eb.instance_profile}: step 3 creates it"
        lacking = [f"{action} on {resource}" for _, resource, actions in instance_needs(s, account)
                   for action in iam.denied_actions(client, role["Arn"], list(actions), resource)]
    except sdk_errors() as exc:
        return f"instance role {s.eb.instance_profile} not checked ({error_code(exc) or type(exc).__name__})"
    if not lacking:
        return f"instance role {s.eb.instance_profile} holds what the instances use"
    return (f"instance role {s.eb.instance_profile} lacks: {', '.join(lacking)} (step 3 grants these with "
            f"{iam.INSTANCE_POLICY_NAME}; environment creation fails if anything still denies them)")


def _service_linked_role(client: Any, principal: str, account: str) -> str:
    """Without a ServiceRole option, CreateEnvironment makes EB create AWSServiceRoleForElasticBeanstalk, which
    needs iam:CreateServiceLinkedRole (IAM-SLR-EB)."""
    try:
        if iam.find_role(client, iam.EB_SERVICE_LINKED_ROLE):
            return f"service-linked role {iam.EB_SERVICE_LINKED_ROLE} exists"
    except sdk_errors() as exc:
        return f"service-linked role {iam.EB_SERVICE_LINKED_ROLE} not checked ({error_code(exc)})"
    command = f"aws iam create-service-linked-role --aws-service-name {iam.EB_SERVICE_NAME}"
    if not principal:
        return (f"service-linked role {iam.EB_SERVICE_LINKED_ROLE} missing: creating the environment creates it "
                f"if you may iam:CreateServiceLinkedRole (otherwise run `{command}` as an administrator)")
    resource = f"arn:aws:iam::{account}:role/aws-service-role/{iam.EB_SERVICE_NAME}/{iam.EB_SERVICE_LINKED_ROLE}"
    try:
        denied = iam.denied_actions(client, principal, ["iam:CreateServiceLinkedRole"], resource,
                                    {"iam:AWSServiceName": iam.EB_SERVICE_NAME})
    except sdk_errors():
        denied = []
    if denied:
        raise StepError(f"the service-linked role {iam.EB_SERVICE_LINKED_ROLE} does not exist and {principal} may "
                        f"not iam:CreateServiceLinkedRole, so creating the environment would fail. Have an "
                        f"administrator run: {command}")
    return f"service-linked role {iam.EB_SERVICE_LINKED_ROLE} missing: EB creates it with the environment"
