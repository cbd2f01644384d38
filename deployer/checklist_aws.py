"""The AWS-facing checklist steps, each a read-only check() plus an idempotent apply() built from
deployer/aws ("already there" is success):

- 1 credentials (and region/key-pair sanity), 2 registry status, 3 registry + instance role, 4 registry login;
- 8 EB application, 9 EB environment + platform (pinned in the saved answers);
- 14a EFS storage, the managed database (rds.mode managed) and secrets in SSM (before step 13 renders
  the bundle);
- 14b application version, 14c create/update the environment, 14d wait for Ready (after step 13).
``aws_steps()`` and ``eb_steps()`` return them; ``checklist.deploy_steps`` slots them in by number.

Facts these steps leave in ``ctx.facts`` for later steps:
``aws`` (the deployer.aws.Aws of this run), ``account_id``, ``repository_uri``, ``registry_login``,
``file_system_id``, ``instance_security_group`` (attached to the EB instances through
aws:autoscaling:launchconfiguration SecurityGroups: EFS admits NFS only from it), ``secret_parameters``
(container variable -> SSM name), ``secret_arns`` (container variable -> ARN, for environmentsecrets),
``rds_endpoint``, ``platform_arn``, ``environment``, ``version_label``, ``eb_request``. They read ``bundle`` and
``render_tree`` (step 13) and, as a test seam, ``sleep``.
"""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass

from deployer import REPO_ROOT, ui
from deployer.steps import Action, Check, Context, StepError


def aws_for(ctx: Context):
    """The run's AWS access (created once): read-only in a dry run, counting calls into ctx.counters."""
    if "aws" not in ctx.facts:
        from deployer.aws import Aws

        def count(service: str, operation: str, kind: str) -> None:
            if kind == "read":
                ctx.counters.aws_read += 1
            else:
                ctx.counters.aws_mutate += 1
                ctx.counters.mutating_calls.append(f"{service}.{operation}")

        settings = ctx.settings
        ctx.facts["aws"] = Aws(profile=settings.aws.profile or None, region=settings.eb.region,
                               read_only=ctx.dry_run, on_call=count)
    return ctx.facts["aws"]


# ECR STAND-IN (tests and `inv sandbox` only): moto's ECR hands out login details with no registry behind
# them, so these variables name a local docker registry (with htpasswd) that stands in for ECR's endpoint.
# Steps 2-4 still make their ECR calls; only the registry address and login they pass on are replaced.
ECR_STANDIN_VARS = ("SIFU_ECR_STANDIN_REGISTRY", "SIFU_ECR_STANDIN_USERNAME", "SIFU_ECR_STANDIN_PASSWORD")


def ecr_standin() -> tuple[str, str, str] | None:
    """(registry host:port, username, password) of the local registry standing in for ECR, or None."""
    import os

    registry, username, password = (os.environ.get(name, "") for name in ECR_STANDIN_VARS)
    return (registry, username, password) if registry else None


def _repository_uri(ctx: Context, repo: dict) -> str:
    standin = ecr_standin()
    return f"{standin[0]}/{ctx.settings.ecr.repository}" if standin else repo["repositoryUri"]


def _tags(ctx: Context) -> dict[str, str]:
    return {"project": ctx.settings.project.name, "sifu:environment": ctx.settings.eb.environment}


def _aws_errors():
    from deployer.aws import sdk_errors

    return sdk_errors()


@contextmanager
def plain_aws_errors():
    """An SDK error inside a step ends the step with the SDK's plain message."""
    try:
        yield
    except _aws_errors() as exc:
        raise StepError(str(exc)) from None


@dataclass
class Credentials:
    """Seed step 1: who we are, in which regions, and whether SSH into the instances will work."""

    number: int = 1
    name: str = "Tools and credentials"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import ec2, sts

        s = ctx.settings
        try:
            aws = aws_for(ctx)
        except _aws_errors() as exc:  # e.g. a profile that ~/.aws/config lacks
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
        if not s.eb.key_name:
            raise StepError("eb.key_name is empty: converging the instances needs SSH with an EC2 key pair. Create "
                            "or import one (`aws ec2 import-key-pair`) and set eb.key_name.")
        with plain_aws_errors():
            identity = sts.caller_identity(aws.client("sts"))
            if not ec2.key_pair_exists(aws.client("ec2"), s.eb.key_name):
                raise StepError(f"EC2 key pair '{s.eb.key_name}' does not exist in {s.eb.region}: import it with "
                                f"`aws ec2 import-key-pair --key-name {s.eb.key_name} --region {s.eb.region} "
                                "--public-key-material fileb://KEY.pub`, or set eb.key_name to an existing one.")
        ctx.facts["account_id"] = identity.account
        tools = ", ".join(f"{tool} CLI {'present' if shutil.which(tool) else 'absent'}" for tool in ("aws", "eb"))
        return Check.ok(f"account {identity.account} ({identity.arn}); EB/EFS region {s.eb.region}, ECR region "
                        f"{s.ecr.region}; key pair {s.eb.key_name}; {tools} (optional: boto3 does the work)")

    def apply(self, ctx: Context, check: Check) -> str | None:
        return None


@dataclass
class RegistryStatus:
    """Seed step 2: does the ECR repository exist, with scan-on-push, immutable tags and the lifecycle policy?"""

    number: int = 2
    name: str = "Registry status"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import ecr

        s = ctx.settings
        client = aws_for(ctx).client("ecr", region=s.ecr.region)
        with plain_aws_errors():
            repo = ecr.find_repository(client, s.ecr.repository)
            drift = ecr.repository_drift(client, s.ecr.repository, s.ecr.keep_images) if repo else ["missing"]
        if repo:
            ctx.facts["repository_uri"] = _repository_uri(ctx, repo)
        where = f"{s.ecr.repository} in {s.ecr.region}"
        if drift == ["missing"]:
            return Check.ok(f"{where}: missing (step 3 creates it)")
        if drift:
            return Check.ok(f"{where}: exists; to fix in step 3: {', '.join(drift)}")
        return Check.ok(f"{where}: scan on push, immutable tags, keeps the last {s.ecr.keep_images} images")

    def apply(self, ctx: Context, check: Check) -> str | None:
        return None


@dataclass
class RegistryAccess:
    """Seed step 3: create/fix the repository; give the EB instance role read access to ECR."""

    number: int = 3
    name: str = "Registry and instance role access"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import ecr, iam

        s = ctx.settings
        aws = aws_for(ctx)
        with plain_aws_errors():
            repo_drift = ecr.repository_drift(aws.client("ecr", region=s.ecr.region), s.ecr.repository,
                                              s.ecr.keep_images)
            role_drift = iam.instance_role_drift(aws.client("iam"), s.eb.instance_profile, [iam.ECR_READ_ONLY])
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
            else:
                actions.append(Action("attach", item.split("/")[-1], f"to role {s.eb.instance_profile}"))
        if not actions:
            return Check.ok(f"repository {s.ecr.repository} and role {s.eb.instance_profile} (ECR read-only) in place")
        return Check.change(f"{len(actions)} change(s) to the registry and instance role", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        from deployer.aws import ecr, iam

        s = ctx.settings
        aws = aws_for(ctx)
        with plain_aws_errors():
            done = ecr.ensure_repository(aws.client("ecr", region=s.ecr.region), s.ecr.repository,
                                         s.ecr.keep_images, tags=_tags(ctx))
            done += iam.ensure_instance_role(aws.client("iam"), s.eb.instance_profile, [iam.ECR_READ_ONLY])
            repo = ecr.find_repository(aws.client("ecr", region=s.ecr.region), s.ecr.repository)
        ctx.facts["repository_uri"] = _repository_uri(ctx, repo)
        return "; ".join(done) or "already in place"


@dataclass
class RegistryLogin:
    """Seed step 4: fetch the registry login (the token lasts 12 h, so every run fetches it)."""

    number: int = 4
    name: str = "Registry login details"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import ecr

        with plain_aws_errors():
            login = ecr.registry_login(aws_for(ctx).client("ecr", region=ctx.settings.ecr.region))
        ui.register_secret(login.password)
        standin = ecr_standin()
        if standin:
            login = ecr.RegistryLogin(username=standin[1], password=standin[2], registry=standin[0], expires_at=None)
            ui.register_secret(login.password)
        ctx.facts["registry_login"] = login
        until = f", valid until {login.expires_at:%Y-%m-%d %H:%M %Z}" if login.expires_at else ""
        where = " (ECR stand-in: a local registry, SIFU_ECR_STANDIN_REGISTRY)" if standin else ""
        return Check.ok(f"login for {login.registry} as {login.username}{until}{where}")

    def apply(self, ctx: Context, check: Check) -> str | None:
        return None


def _zones(ctx: Context) -> tuple[str, dict[str, str]]:
    """(vpc id, {zone: subnet}) the environment's instances use: one default-VPC subnet per zone."""
    from deployer.aws import ec2

    client = aws_for(ctx).client("ec2")
    vpc = ec2.default_vpc_id(client)
    if not vpc:
        raise StepError(f"no default VPC in {ctx.settings.eb.region}: create one (`aws ec2 create-default-vpc`)")
    found = client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                             {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    zones = {sn["AvailabilityZone"]: sn["SubnetId"] for sn in sorted(found, key=lambda sn: sn["AvailabilityZone"])}
    one_zone = ctx.settings.efs.availability_zone
    if one_zone:
        if one_zone not in zones:
            raise StepError(f"efs.availability_zone {one_zone} has no default subnet in {ctx.settings.eb.region}")
        zones = {one_zone: zones[one_zone]}
    return vpc, zones


@dataclass
class EfsStorage:
    """Seed step 14 (storage): the notebook file system, a mount target per zone, NFS only from our instances."""

    number: int | str = "14a"
    name: str = "EFS file system"

    def _names(self, ctx: Context) -> tuple[str, str, str]:
        base = f"{ctx.settings.project.name}-{ctx.settings.eb.environment}"
        return f"{base}-notebooks", instances_group_name(ctx), f"{base}-efs"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import ec2, efs

        s = ctx.settings
        if s.storage.kind != "efs":
            return Check.ok(f"storage.kind is {s.storage.kind}: no EFS")
        aws = aws_for(ctx)
        token, instances_sg_name, efs_sg_name = self._names(ctx)
        with plain_aws_errors():
            if s.efs.file_system_id:
                fs = efs.describe_file_system(aws.client("efs"), s.efs.file_system_id)
                if fs is None:
                    raise StepError(f"efs.file_system_id {s.efs.file_system_id} does not exist in {s.eb.region}; "
                                    "fix it, or empty it to let the deployer create one")
                ctx.facts["file_system_id"] = fs["FileSystemId"]
                return Check.ok(f"using the configured file system {fs['FileSystemId']}")
            vpc, zones = _zones(ctx)
            instances_sg = ec2.find_security_group(aws.client("ec2"), vpc, instances_sg_name)
            drift = efs.file_system_drift(aws.client("efs"), aws.client("ec2"), token, zones,
                                          instances_sg["GroupId"] if instances_sg else None, efs_sg_name, vpc)
            found = efs.find_file_system(aws.client("efs"), token)
        if instances_sg:
            ctx.facts["instance_security_group"] = instances_sg["GroupId"]
        if found:
            ctx.facts["file_system_id"] = found["FileSystemId"]
        elif ctx.dry_run:
            # The plan still renders the bundle (step 13); a real deploy creates the file system first.
            from deployer.remote.hooks import OFFLINE_FILE_SYSTEM_ID

            ctx.facts["file_system_id"] = OFFLINE_FILE_SYSTEM_ID
        actions = []
        if instances_sg is None:
            actions.append(Action("create", f"security group {instances_sg_name}", "attached to the EB instances"))
        for item in drift:
            if item == "file-system":
                actions.append(Action("create", f"EFS file system {token}", "encrypted, tagged"))
            elif item == "security-group":
                actions.append(Action("create", f"security group {efs_sg_name}", f"2049/tcp from {instances_sg_name} only"))
            elif item == "nfs-rule":
                actions.append(Action("allow", f"2049/tcp into {efs_sg_name}", f"from {instances_sg_name} only"))
            else:
                actions.append(Action("create", f"mount target in {item.split(':', 1)[1]}"))
        if not actions:
            return Check.ok(f"{found['FileSystemId']}: mount targets in {', '.join(zones)}; NFS only from "
                            f"{instances_sg_name}")
        return Check.change(f"{len(actions)} change(s) to EFS", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        from deployer.aws import ec2, efs

        aws = aws_for(ctx)
        token, instances_sg_name, efs_sg_name = self._names(ctx)
        done = []
        with plain_aws_errors():
            vpc, zones = _zones(ctx)
            sg = ec2.find_security_group(aws.client("ec2"), vpc, instances_sg_name)
            if sg is None:
                sg_id = ec2.create_security_group(aws.client("ec2"), vpc, instances_sg_name,
                                                  "Sifu Elastic Beanstalk instances (EFS admits NFS from this group)",
                                                  _tags(ctx))
                done.append(f"created security group {instances_sg_name}")
            else:
                sg_id = sg["GroupId"]
            fs_id, more = efs.ensure_file_system(
                aws.client("efs"), aws.client("ec2"), creation_token=token, tags={**_tags(ctx), "Name": token},
                subnets_by_zone=zones, vpc_id=vpc, instance_sg=sg_id, mount_sg_name=efs_sg_name,
                availability_zone=ctx.settings.efs.availability_zone)
        ctx.facts["instance_security_group"] = sg_id
        ctx.facts["file_system_id"] = fs_id
        return "; ".join(done + more) or "already in place"


def instances_group_name(ctx: Context) -> str:
    return f"{ctx.settings.project.name}-{ctx.settings.eb.environment}-instances"


def _instances_group(ctx: Context, vpc: str, create: bool) -> str | None:
    """Our security group for the EB instances (EFS and RDS admit traffic only from it)."""
    from deployer.aws import ec2

    name = instances_group_name(ctx)
    client = aws_for(ctx).client("ec2")
    found = ec2.find_security_group(client, vpc, name)
    if found:
        return found["GroupId"]
    if not create:
        return None
    return ec2.create_security_group(client, vpc, name, "Sifu Elastic Beanstalk instances (EFS and RDS admit "
                                     "traffic from this group only)", _tags(ctx))


@dataclass
class ManagedDatabase:
    """Seed step 14 (database): with rds.mode managed, a PostgreSQL instance created by us outside the EB
    environment, with deletion protection, reachable only from our instances; terminating or rebuilding the
    environment never touches it. Its password goes to SSM (step "Secrets in SSM"), never into the bundle."""

    number: int | str = "14a"
    name: str = "Managed database"

    def _names(self, ctx: Context) -> tuple[str, str]:
        """(DB instance identifier, its security group name): the same name for both."""
        name = f"{ctx.settings.project.name}-{ctx.settings.eb.environment}-db"
        return name, name

    def check(self, ctx: Context) -> Check:
        from deployer.aws import ec2, rds

        s = ctx.settings
        if s.rds.mode != "managed":
            return Check.ok(f"rds.mode is {s.rds.mode}: no managed database")
        if not s.rds.password.get_secret_value():
            raise StepError("rds.mode is managed but rds.password (RDS_PASSWORD) is empty: set it; it is stored in "
                            "SSM as a SecureString and never written into the bundle")
        identifier, sg_name = self._names(ctx)
        aws = aws_for(ctx)
        with plain_aws_errors():
            found = rds.find_db_instance(aws.client("rds"), identifier)
            vpc = ec2.default_vpc_id(aws.client("ec2"))
            sg = ec2.find_security_group(aws.client("ec2"), vpc, sg_name) if vpc else None
            instances_sg = _instances_group(ctx, vpc, create=False) if vpc else None
        actions = []
        if instances_sg is None:
            actions.append(Action("create", f"security group {instances_group_name(ctx)}"))
        if sg is None or not (instances_sg and ec2.allows_from_group(sg, s.rds.port, instances_sg)):
            actions.append(Action("allow", f"{s.rds.port}/tcp into {sg_name}", "from our instances only"))
        if found is None:
            actions.append(Action("create", f"RDS PostgreSQL {identifier}",
                                  f"{s.rds.instance_class}, {s.rds.allocated_storage} GiB, encrypted, deletion protection"))
        else:
            ctx.facts["rds_endpoint"] = (found.get("Endpoint") or {}).get("Address")
            if not found.get("DeletionProtection"):
                raise StepError(f"RDS {identifier} exists without deletion protection: turn it on (`aws rds "
                                f"modify-db-instance --db-instance-identifier {identifier} --deletion-protection`)")
        if not actions:
            return Check.ok(f"{identifier}: {found.get('DBInstanceStatus')}, {ctx.facts.get('rds_endpoint')}")
        return Check.change(f"{len(actions)} change(s) for the database", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        from deployer.aws import ec2, rds

        s = ctx.settings
        identifier, sg_name = self._names(ctx)
        aws = aws_for(ctx)
        done = []
        with plain_aws_errors():
            vpc = ec2.default_vpc_id(aws.client("ec2"))
            instances_sg = _instances_group(ctx, vpc, create=True)
            ctx.facts["instance_security_group"] = instances_sg
            sg = ec2.find_security_group(aws.client("ec2"), vpc, sg_name)
            if sg is None:
                sg_id = ec2.create_security_group(aws.client("ec2"), vpc, sg_name,
                                                  "PostgreSQL from the Sifu instances only", _tags(ctx))
                sg = aws.client("ec2").describe_security_groups(GroupIds=[sg_id])["SecurityGroups"][0]
                done.append(f"created security group {sg_name}")
            if not ec2.allows_from_group(sg, s.rds.port, instances_sg):
                ec2.allow_from_group(aws.client("ec2"), sg["GroupId"], s.rds.port, instances_sg, "PostgreSQL from EB")
                done.append(f"allowed {s.rds.port}/tcp from our instances")
            found = rds.find_db_instance(aws.client("rds"), identifier)
            if found is None:
                password = s.rds.password.get_secret_value()
                ui.register_secret(password)
                found = rds.create_db_instance(
                    aws.client("rds"), identifier=identifier, db_name=s.rds.db_name, username=s.rds.username,
                    password=password, instance_class=s.rds.instance_class,
                    allocated_storage=s.rds.allocated_storage, port=s.rds.port, security_group_ids=[sg["GroupId"]],
                    tags=_tags(ctx))
                done.append(f"created RDS {identifier}")
        ctx.facts["rds_endpoint"] = (found.get("Endpoint") or {}).get("Address")
        return "; ".join(done) or "already in place"


@dataclass
class Secrets:
    """Secrets go to SSM Parameter Store as SecureString; EB gets their ARNs, never their values."""

    number: int | str = "14a"
    name: str = "Secrets in SSM"

    def _wanted(self, ctx: Context) -> dict[str, tuple[str, str | None]]:
        """{container variable: (parameter name, value)}; value None means: generate once (the signing key),
        or for a secret left empty in the configuration, keep what is stored."""
        from deployer.render import secret_parameter_names

        s = ctx.settings
        values = {
            "EDX_OAUTH2_CLIENT_SECRET": s.edx.oauth2_client_secret.get_secret_value() or None,
            "RDS_PASSWORD": s.rds.password.get_secret_value() or None,
        }
        return {var: (name, values.get(var)) for var, name in secret_parameter_names(s).items()}

    def check(self, ctx: Context) -> Check:
        from deployer.aws import ssm

        client = aws_for(ctx).client("ssm")
        actions, arns = [], {}
        with plain_aws_errors():
            for var, (name, value) in self._wanted(ctx).items():
                arn = ssm.parameter_arn(client, name)
                if arn:
                    arns[var] = arn
                if value is None:
                    if arn is None and var != "SIFU_SECRET_KEY":
                        setting = {"EDX_OAUTH2_CLIENT_SECRET": "edx.oauth2_client_secret (EDX_OAUTH2_CLIENT_SECRET)",
                                   "RDS_PASSWORD": "rds.password (RDS_PASSWORD)"}[var]
                        raise StepError(f"{setting} is empty and SSM parameter {name} does not exist: set it once; "
                                        "it is then kept in SSM as a SecureString")
                    if arn is None:
                        actions.append(Action("generate", f"SecureString {name}"))
                    continue
                state = ssm.parameter_matches(client, name, value)
                if state is None:
                    actions.append(Action("create", f"SecureString {name}"))
                elif state is False:
                    actions.append(Action("update", f"SecureString {name}"))
        ctx.facts["secret_parameters"] = {var: name for var, (name, _) in self._wanted(ctx).items()}
        ctx.facts["secret_arns"] = arns
        if not actions:
            return Check.ok(f"{len(arns)} SecureString parameter(s) in place")
        return Check.change(f"{len(actions)} secret(s) to store", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        import secrets

        from deployer.aws import ssm

        client = aws_for(ctx).client("ssm")
        done = []
        with plain_aws_errors():
            for var, (name, value) in self._wanted(ctx).items():
                if value is None:
                    if ssm.parameter_arn(client, name) is not None:
                        continue  # kept as stored; the signing key is generated once (rotating signs everyone out)
                    value = secrets.token_urlsafe(48)
                ui.register_secret(value)
                done += ssm.ensure_secure_parameter(client, name, value, tags=_tags(ctx))
                ctx.facts.setdefault("secret_arns", {})[var] = ssm.parameter_arn(client, name)
        return "; ".join(done) or "already in place"


# -- Elastic Beanstalk -------------------------------------------------------------------------------

INSTANCE_SG_OPTION = ("aws:autoscaling:launchconfiguration", "SecurityGroups")


@dataclass
class EbApplication:
    """Seed step 8: the Elastic Beanstalk application (eb.application), created when missing."""

    number: int = 8
    name: str = "Elastic Beanstalk application"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import eb

        app = ctx.settings.eb.application
        with plain_aws_errors():
            found = eb.find_application(aws_for(ctx).client("elasticbeanstalk"), app)
        if found:
            return Check.ok(f"{app} exists ({len(found.get('Versions', []))} version(s))")
        return Check.change(f"{app} is missing", Action("create", f"application {app}"))

    def apply(self, ctx: Context, check: Check) -> str | None:
        from deployer.aws import eb

        with plain_aws_errors():
            eb.create_application(aws_for(ctx).client("elasticbeanstalk"), ctx.settings.eb.application,
                                  "Sifu notebooks for Open edX", _tags(ctx))
        return f"created application {ctx.settings.eb.application}"


@dataclass
class EbEnvironment:
    """Seed step 9: the environment (eb.environment) and its platform, Docker on Amazon Linux 2023,
    resolved once through list_platform_versions and pinned in the saved answers."""

    number: int = 9
    name: str = "Elastic Beanstalk environment"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import eb

        s = ctx.settings
        client = aws_for(ctx).client("elasticbeanstalk")
        with plain_aws_errors():
            platform = s.eb.platform_arn or eb.docker_platform_arn(client)
            env = eb.find_environment(client, s.eb.application, s.eb.environment)
        ctx.facts["platform_arn"] = platform
        if not s.eb.platform_arn:
            ctx.answers["eb.platform_arn"] = platform  # saved with the bundle step, so the next run reuses it
        ctx.facts["environment"] = env
        branch_version = platform.split("platform/", 1)[-1]
        if env:
            return Check.ok(f"{s.eb.environment}: {env['Status']}, health {env.get('Health')}, version "
                            f"{env.get('VersionLabel', '-')}, {env.get('CNAME', '')}; platform {branch_version}")
        return Check.ok(f"{s.eb.environment} does not exist yet: step 14c creates it on {branch_version}")

    def apply(self, ctx: Context, check: Check) -> str | None:
        return None


EB_CLI_CONFIG = ".elasticbeanstalk/config.yml"
EB_CLI_CONFIG_PATH = REPO_ROOT / EB_CLI_CONFIG  # where the eb CLI looks (the project directory)


@dataclass
class EbCliConfig:
    """Seed step 9 (EB CLI): write .elasticbeanstalk/config.yml (git-ignored) for `eb status/ssh/logs`."""

    number: int = 9
    name: str = "EB CLI configuration"

    def _wanted(self, ctx: Context) -> str:
        from deployer import render

        s = ctx.settings
        return render.render_template("eb-cli-config.yml.j2", {
            "environment": s.eb.environment, "application": s.eb.application, "key_name": s.eb.key_name,
            "platform": ctx.facts.get("platform_arn") or s.eb.platform_arn, "region": s.eb.region,
            "profile": s.aws.profile})

    def path(self):
        return EB_CLI_CONFIG_PATH

    def check(self, ctx: Context) -> Check:
        path = self.path()
        if path.exists() and path.read_text() == self._wanted(ctx):
            return Check.ok(f"{EB_CLI_CONFIG} names {ctx.settings.eb.application}/{ctx.settings.eb.environment}")
        return Check.change(f"{EB_CLI_CONFIG} {'differs' if path.exists() else 'missing'}",
                            Action("write", EB_CLI_CONFIG, "for eb status/ssh/logs"))

    def apply(self, ctx: Context, check: Check) -> str | None:
        import os

        path = self.path()
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self._wanted(ctx))
        os.replace(tmp, path)
        return f"wrote {EB_CLI_CONFIG}"


def _bundle_key(ctx: Context, label: str) -> str:
    return f"{ctx.settings.eb.application}/{label}.zip"


@dataclass
class ApplicationVersion:
    """Seed step 14: upload the bundle to EB's storage bucket and register it; the label is its content hash."""

    number: int | str = "14b"
    name: str = "Application version"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import eb, s3

        built = ctx.facts.get("bundle")
        if built is None:
            raise StepError("no bundle was rendered (step 13 must run before this one)")
        if not ctx.facts.get("image_uri") and not ctx.dry_run:
            raise StepError("no image to deploy: steps 6 and 7 (build, push) have not produced one, so the bundle "
                            "would name no tested image; nothing was uploaded to Elastic Beanstalk")
        s = ctx.settings
        aws = aws_for(ctx)
        account = ctx.facts.get("account_id") or "unknown"
        bucket = eb.storage_bucket(s.eb.region, account)
        key = _bundle_key(ctx, built.version_label)
        with plain_aws_errors():
            version = eb.find_application_version(aws.client("elasticbeanstalk"), s.eb.application,
                                                  built.version_label)
            uploaded = s3.object_exists(aws.client("s3"), bucket, key) if version is None else True
        ctx.facts["version_label"] = built.version_label
        if version:
            return Check.ok(f"{built.version_label} registered")
        actions = []
        if not uploaded:
            actions.append(Action("upload", f"s3://{bucket}/{key}", f"{len(built.data)} bytes"))
        actions.append(Action("create", f"application version {built.version_label}"))
        return Check.change(f"new version {built.version_label}", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        from deployer.aws import eb, s3

        built = ctx.facts["bundle"]
        aws = aws_for(ctx)
        key = _bundle_key(ctx, built.version_label)
        with plain_aws_errors():
            bucket = eb.create_storage_location(aws.client("elasticbeanstalk"))  # idempotent, returns the bucket
            uploaded = s3.upload_bundle(aws.client("s3"), bucket, key, built.data)
            eb.create_application_version(aws.client("elasticbeanstalk"), ctx.settings.eb.application,
                                          built.version_label, bucket, key, "Sifu notebooks bundle")
        return f"{'uploaded and ' if uploaded else ''}registered {built.version_label}"


def desired_options(ctx: Context) -> dict[tuple[str, str], str]:
    """The environment's option settings as step 13 rendered them (our instances' security group included)."""
    from deployer import render

    tree = ctx.facts.get("render_tree")
    if tree is None:
        raise StepError("no option settings were rendered (step 13 must run before this one)")
    return {(o["Namespace"], o["OptionName"]): o["Value"] for o in render.option_settings(tree)}


@dataclass
class DeployEnvironment:
    """Seed step 14: create the environment, or update it with only what differs (version, settings)."""

    number: int | str = "14c"
    name: str = "Create or update the environment"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import eb

        s = ctx.settings
        label = ctx.facts.get("version_label")
        if not label:
            raise StepError("no application version (step 14b must run before this one)")
        options = desired_options(ctx)
        client = aws_for(ctx).client("elasticbeanstalk")
        with plain_aws_errors():
            env = eb.find_environment(client, s.eb.application, s.eb.environment)
            current = eb.current_options(client, s.eb.application, s.eb.environment) if env else {}
        if env is None:
            return Check.change(f"create {s.eb.environment}", Action(
                "create", f"environment {s.eb.environment}", f"version {label}, {len(options)} option settings"))
        if env["Status"] not in ("Ready",):
            # A previous run was interrupted while EB worked; 14d waits for it, the next run updates.
            ctx.facts["pending_changes"] = True
            return Check.ok(f"{s.eb.environment} is {env['Status']}: step 14d waits for it; run the deploy "
                            "again afterwards if this step reports changes then")
        changes = eb.option_changes(current, options)
        actions = [Action("set", f"{ns} {name}", value if "environmentsecrets" not in ns else "(secret reference)")
                   for (ns, name), value in sorted(changes.items())]
        if env.get("VersionLabel") != label:
            actions.insert(0, Action("deploy", f"version {label}", f"replacing {env.get('VersionLabel', '-')}"))
        if not actions:
            return Check.ok(f"{s.eb.environment} runs {label} with the wanted settings")
        ctx.facts["option_changes"] = changes
        return Check.change(f"update {s.eb.environment}", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        from deployer.aws import eb

        s = ctx.settings
        label = ctx.facts["version_label"]
        client = aws_for(ctx).client("elasticbeanstalk")
        with plain_aws_errors():
            # Events after this instant (and carrying our request id) belong to this deployment.
            since = eb.latest_event_time(client, s.eb.environment)
            if any(a.verb == "create" for a in check.actions):
                found = eb.create_environment(client, s.eb.application, s.eb.environment, ctx.facts["platform_arn"],
                                              label, desired_options(ctx), s.eb.cname_prefix, _tags(ctx))
            else:
                deploy = any(a.verb == "deploy" for a in check.actions)
                found = eb.update_environment(client, s.eb.environment, version_label=label if deploy else None,
                                              options=ctx.facts.get("option_changes") or None)
        from datetime import UTC, datetime

        ctx.facts["eb_request"] = {"request_id": found["ResponseMetadata"]["RequestId"],
                                   "since": since or datetime(1970, 1, 1, tzinfo=UTC)}
        return f"{'created' if any(a.verb == 'create' for a in check.actions) else 'updated'} {s.eb.environment}"


@dataclass
class WaitReady:
    """Seed step 14: wait for Ready while streaming EB's events; then require our version and Green health."""

    number: int | str = "14d"
    name: str = "Wait for Ready"

    def check(self, ctx: Context) -> Check:
        from deployer.aws import eb

        s = ctx.settings
        if ctx.facts.get("eb_request"):
            return Check.change("waiting for the request just made", Action("wait", f"{s.eb.environment} Ready"))
        with plain_aws_errors():
            env = eb.find_environment(aws_for(ctx).client("elasticbeanstalk"), s.eb.application, s.eb.environment)
        if env is None:
            return Check.ok("no environment yet") if ctx.dry_run else Check.change(
                "environment missing", Action("wait", s.eb.environment))
        if env["Status"] != "Ready":
            return Check.change(f"{s.eb.environment} is {env['Status']}", Action("wait", f"{s.eb.environment} Ready"))
        if env.get("Health") != "Green":
            return Check.change(f"{s.eb.environment} health is {env.get('Health')}",
                                Action("check", f"{s.eb.environment} health"))
        return Check.ok(f"{s.eb.environment} Ready and Green, version {env.get('VersionLabel')}")

    def apply(self, ctx: Context, check: Check) -> str | None:
        from datetime import UTC, datetime

        from deployer.aws import eb

        s = ctx.settings
        if not ctx.wait:
            return "not waiting (--no-wait): follow it with `inv status`"
        request = ctx.facts.get("eb_request") or {}
        client = aws_for(ctx).client("elasticbeanstalk")

        def show(event: dict) -> None:
            ctx.emit(f"    {event['EventDate']:%H:%M:%S} {event['Severity']:<5} {event['Message']}")

        with plain_aws_errors():
            result = eb.wait_for_environment(
                client, s.eb.environment, request.get("since") or datetime.now(UTC), show,
                expect_version=ctx.facts.get("version_label"), request_id=request.get("request_id"),
                timeout=s.eb.wait_timeout, interval=s.eb.poll_interval,
                sleep=ctx.facts.get("sleep", time.sleep))  # facts["sleep"]: test seam
        ctx.counters.waited_seconds += result.waited_seconds
        env = result.environment
        return f"{s.eb.environment} Ready, {env.get('Health')}, version {env.get('VersionLabel')}: http://{env.get('CNAME')}"


def eb_steps() -> list:
    """The Elastic Beanstalk steps, in run order (8, 9 before rendering; 14b-14d after step 13)."""
    return [EbApplication(), EbEnvironment(), ApplicationVersion(), DeployEnvironment(), WaitReady()]


def aws_steps() -> list:
    """The AWS steps in run order, for checklist.deploy_steps to slot in."""
    return [Credentials(), RegistryStatus(), RegistryAccess(), RegistryLogin(), EfsStorage(), ManagedDatabase(),
            Secrets()]


def with_aws_steps(steps: list) -> list:
    """``checklist.deploy_steps()`` with its AWS placeholders (NotYetBuilt 1-4, 8, 9, 14a-14d) replaced by
    these steps; 14a becomes EFS, the managed database and the secrets."""
    real = {1: [Credentials()], 2: [RegistryStatus()], 3: [RegistryAccess()], 4: [RegistryLogin()],
            8: [EbApplication()], 9: [EbEnvironment(), EbCliConfig()], "14a": [EfsStorage(), ManagedDatabase(), Secrets()],
            "14b": [ApplicationVersion()], "14c": [DeployEnvironment()], "14d": [WaitReady()]}
    from deployer.checklist_instances import instance_steps

    real.update(instance_steps())
    out: list = []
    for step in steps:
        if type(step).__name__ == "NotYetBuilt" and step.number in real:
            out += real[step.number]
        else:
            out.append(step)
    return out
