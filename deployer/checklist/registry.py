"""Seed steps 1-4: credentials and sanity checks, then the image registry (ECR): its status, the repository
with the instance role's read access, and the login."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from deployer import kept_images, names, ui
from deployer.aws import ec2, ecr, iam, sdk_errors, sts
from deployer.checklist import preflight
from deployer.checklist.aws_calls import live_environment, plain_aws_errors
from deployer.checklist.context import Context
from deployer.steps import Action, Check, ReadOnly, StepError

@dataclass
class Credentials(ReadOnly):
    """Seed step 1: who we are, in which regions, and whether SSH into the instances will work."""

    number: int = 1
    name: str = "Tools and credentials"

    def check(self, ctx: Context) -> Check:
        s = ctx.settings
        try:
            aws = ctx.aws()
        except sdk_errors() as exc:  # e.g. a profile that ~/.aws/config lacks
            raise StepError(f"no AWS credentials: {exc}. Set AWS_PROFILE (or aws.profile) to a profile from "
                            "~/.aws/config, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
        # Credentials first: without them nothing else can be checked, and boto3's own message is cryptic.
        if aws.session.get_credentials() is None:
            raise StepError("no AWS credentials: boto3 found none in the environment, ~/.aws or an instance role. "
                            "Set AWS_PROFILE (or aws.profile) to a profile from ~/.aws/config, or "
                            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; to try the deploy without an AWS "
                            "account, run `inv sandbox` and export what it prints")
        # Configuration mistakes next: they need no AWS call at all.
        if s.storage.kind == "efs" and s.efs.region != s.eb.region:
            raise StepError(f"efs.region ({s.efs.region}) differs from eb.region ({s.eb.region}): the instances can "
                            f"only mount a file system in their own region. Set efs.region to {s.eb.region}.")
        layout = _registry_layout(ctx)
        if not s.eb.key_name:
            raise StepError("eb.key_name is empty: converging the instances needs SSH with an EC2 key pair. Create "
                            "or import one (`aws ec2 import-key-pair`) and set eb.key_name.")
        with plain_aws_errors():
            identity = sts.caller_identity(aws.client("sts"))
            if not ec2.key_pair_exists(aws.client("ec2"), s.eb.key_name):
                raise StepError(f"EC2 key pair '{s.eb.key_name}' does not exist in {s.eb.region}: import it with "
                                f"`aws ec2 import-key-pair --key-name {s.eb.key_name} --region {s.eb.region} "
                                "--public-key-material fileb://KEY.pub`, or set eb.key_name to an existing one.")
        ctx.facts.account_id = identity.account
        permissions = preflight.check(ctx, identity.arn, identity.account)
        tools = ", ".join(f"{tool} CLI {'present' if shutil.which(tool) else 'absent'}" for tool in ("aws", "eb"))
        return Check.ok(f"account {identity.account} ({identity.arn}); EB/EFS region {s.eb.region}, ECR region "
                        f"{s.ecr.region}{layout}; key pair {s.eb.key_name}; {tools} (optional: boto3 does the work); "
                        f"{permissions}")


def _registry_layout(ctx: Context) -> str:
    """The registry in another region than the environment: no AWS document says the EB Docker platform pulls
    from another region's ECR (ECR-CROSS-REGION, UNSETTLED), so that layout must be chosen explicitly; the
    default ecr.region only follows eb.region. Returns a note for step 1's report."""
    s = ctx.settings
    if s.ecr.region == s.eb.region:
        return ""
    if ctx.loaded.sources.get("ecr.region", "defaults") == "defaults":
        raise StepError(f"eb.region is {s.eb.region} but ecr.region is still its default {s.ecr.region}: the "
                        "instances would pull from another region's registry, which AWS does not document. Set "
                        f"ecr.region: {s.eb.region} (recommended), or set ecr.region explicitly to keep the "
                        f"registry in {s.ecr.region}.")
    return (f" (WARNING: the registry is in another region than the environment, as configured; AWS does not "
            f"document that Elastic Beanstalk pulls across regions. If the instances cannot pull the image, set "
            f"ecr.region: {s.eb.region}. See docs/aws-behaviour.md, ECR-CROSS-REGION)")


@dataclass
class RegistryStatus(ReadOnly):
    """Seed step 2: does the ECR repository exist, with scan-on-push, immutable tags and the lifecycle policy?"""

    number: int = 2
    name: str = "Registry status"

    def check(self, ctx: Context) -> Check:
        s = ctx.settings
        client = ctx.aws().client("ecr", region=s.ecr.region)
        with plain_aws_errors():
            repo = ecr.find_repository(client, s.ecr.repository)
            drift = ecr.repository_drift(client, s.ecr.repository, s.ecr.keep_images) if repo else ["missing"]
        if repo:
            ctx.facts.repository_name = repo["repositoryName"]
        where = f"{s.ecr.repository} in {s.ecr.region}"
        if drift == ["missing"]:
            return Check.ok(f"{where}: missing (step 3 creates it)")
        if drift:
            return Check.ok(f"{where}: exists; to fix in step 3: {', '.join(drift)}")
        return Check.ok(f"{where}: scan on push, immutable tags, keeps the last {s.ecr.keep_images} images")


@dataclass
class RegistryAccess:
    """Seed step 3: create/fix the repository; give the EB instance role read access to ECR."""

    number: int = 3
    name: str = "Registry and instance role access"

    def check(self, ctx: Context) -> Check:
        s = ctx.settings
        aws = ctx.aws()
        with plain_aws_errors():
            repo_drift = ecr.repository_drift(aws.client("ecr", region=s.ecr.region), s.ecr.repository,
                                              s.ecr.keep_images)
            role_drift = iam.instance_role_drift(aws.client("iam"), s.eb.instance_profile, [iam.ECR_READ_ONLY],
                                                 _instance_policy(ctx))
        actions = []
        if "missing" in repo_drift:
            actions.append(Action("create", f"ECR repository {s.ecr.repository}",
                                  f"scan on push, immutable tags, keep last {s.ecr.keep_images}"))
        else:
            actions += [Action("fix", f"ECR repository {s.ecr.repository}", item) for item in repo_drift]
        for item in role_drift:
            if item == "role":
                actions.append(Action("create", f"IAM role {s.eb.instance_profile}", "trusted by EC2"))
            elif item == "instance-profile":
                actions.append(Action("create", f"instance profile {s.eb.instance_profile}"))
            elif item == "profile-role":
                actions.append(Action("add", f"role {s.eb.instance_profile} to its instance profile"))
            elif item == "inline-policy":
                actions.append(Action("set", f"inline policy {iam.INSTANCE_POLICY_NAME}",
                                      f"on role {s.eb.instance_profile}: EB bucket, health statistics, "
                                      f"parameters {names.secret_parameters_path(s)}/*"))
            else:
                actions.append(Action("attach", item.split("/")[-1], f"to role {s.eb.instance_profile}"))
        if not actions:
            return Check.ok(f"repository {s.ecr.repository} and role {s.eb.instance_profile} (ECR read-only, "
                            f"{iam.INSTANCE_POLICY_NAME}) in place")
        return Check.change(f"{len(actions)} change(s) to the registry and instance role", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        s = ctx.settings
        aws = ctx.aws()
        with plain_aws_errors():
            done = ecr.ensure_repository(aws.client("ecr", region=s.ecr.region), s.ecr.repository,
                                         s.ecr.keep_images, tags=names.tags(ctx.settings))
            done += iam.ensure_instance_role(aws.client("iam"), s.eb.instance_profile, [iam.ECR_READ_ONLY],
                                             _instance_policy(ctx))
            repo = ecr.find_repository(aws.client("ecr", region=s.ecr.region), s.ecr.repository)
        ctx.facts.repository_name = repo["repositoryName"]
        return "; ".join(done) or "already in place"


def _instance_policy(ctx: Context) -> str:
    """The instance role's inline policy for this environment (no customer KMS key is configurable: our
    parameters use the account's aws/ssm key, IAM-ENVSECRETS-KMS)."""
    s = ctx.settings
    return iam.instance_policy(s.eb.region, _account(ctx), s.eb.application, s.eb.environment,
                               names.secret_parameters_path(s))


def _account(ctx: Context) -> str:
    """The account id step 1 found (looked up when a step runs without step 1)."""
    if not ctx.facts.account_id:
        with plain_aws_errors():
            ctx.facts.account_id = sts.caller_identity(ctx.aws().client("sts")).account
    return ctx.facts.account_id


@dataclass
class RegistryLogin(ReadOnly):
    """Seed step 4: fetch the registry login (the token lasts 12 h, so every run fetches it). Docker logs in to,
    and the image is pushed to and named at, the host of the login's endpoint (for ECR, the host in the
    repository's URI)."""

    number: int = 4
    name: str = "Registry login details"

    def check(self, ctx: Context) -> Check:
        with plain_aws_errors():
            login = ecr.registry_login(ctx.aws().client("ecr", region=ctx.settings.ecr.region))
        ui.register_secret(login.password)
        ctx.facts.registry_login = login
        if ctx.facts.repository_name:
            ctx.facts.repository_uri = f"{login.registry}/{ctx.facts.repository_name}"
        until = f", valid until {login.expires_at:%Y-%m-%d %H:%M %Z}" if login.expires_at else ""
        return Check.ok(f"login for {login.registry} as {login.username}{until}")


@dataclass
class KeepImages:
    """After the deploy: tag the images of the live version and of its rollback target ``keep-<version>`` and
    untag versions no longer kept, so the lifecycle policy never expires an image a version may run
    (ECR-LIFECYCLE-PROTECT)."""

    number: int | str = "14g"
    name: str = "Keep the live and rollback images"

    def check(self, ctx: Context) -> Check:
        env = live_environment(ctx)
        if env is None or not env.get("VersionLabel"):
            return Check.ok("no live version yet")
        account = _account(ctx)
        with plain_aws_errors():
            keep = kept_images.plan(ctx.aws(), ctx.settings, account, env["VersionLabel"])
        ctx.facts.keep_plan = keep
        kept = ", ".join(f"{label} ({tag})" for label, tag in keep.kept.items()) or "none in the repository"
        if not keep.add and not keep.remove:
            return Check.ok(f"kept: {kept}")
        return Check.change(f"kept: {kept}", *[Action("tag", tag, new) for new, tag in keep.add.items()],
                            *[Action("untag", old) for old in keep.remove])

    def apply(self, ctx: Context, check: Check) -> str | None:
        with plain_aws_errors():
            return "; ".join(kept_images.apply(ctx.aws(), ctx.settings, ctx.facts.keep_plan))
