"""Seed step 14a, before the bundle is rendered (it names what these create): the notebook file system (EFS),
the managed database (rds.mode managed) and the secrets in SSM."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from deployer import names, ui
from deployer.aws import ec2, efs, rds, ssm
from deployer.checklist.aws_calls import plain_aws_errors
from deployer.checklist.context import Context
from deployer.remote.hooks import OFFLINE_FILE_SYSTEM_ID
from deployer.render import secret_parameter_names
from deployer.steps import Action, Check, StepError


def _zones(ctx: Context) -> tuple[str, dict[str, str]]:
    """(vpc id, {zone: subnet}) the environment's instances use: one default-VPC subnet per zone."""
    client = ctx.aws().client("ec2")
    vpc = ec2.default_vpc_id(client)
    if not vpc:
        raise StepError(f"no default VPC in {ctx.settings.eb.region}: create one (`aws ec2 create-default-vpc`)")
    zones = ec2.default_subnets_by_zone(client, vpc)
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
        s = ctx.settings
        return names.efs_creation_token(s), names.instances_security_group(s), names.efs_security_group(s)

    def check(self, ctx: Context) -> Check:
        s = ctx.settings
        if s.storage.kind != "efs":
            return Check.ok(f"storage.kind is {s.storage.kind}: no EFS")
        aws = ctx.aws()
        token, instances_sg_name, efs_sg_name = self._names(ctx)
        with plain_aws_errors():
            if s.efs.file_system_id:
                fs = efs.describe_file_system(aws.client("efs"), s.efs.file_system_id)
                if fs is None:
                    raise StepError(f"efs.file_system_id {s.efs.file_system_id} does not exist in {s.eb.region}; "
                                    "fix it, or empty it to let the deployer create one")
                ctx.facts.file_system_id = fs["FileSystemId"]
                return Check.ok(f"using the configured file system {fs['FileSystemId']}")
            vpc, zones = _zones(ctx)
            instances_sg = ec2.find_security_group(aws.client("ec2"), vpc, instances_sg_name)
            drift = efs.file_system_drift(aws.client("efs"), aws.client("ec2"), token, zones,
                                          instances_sg["GroupId"] if instances_sg else None, efs_sg_name, vpc)
            found = efs.find_file_system(aws.client("efs"), token)
        if instances_sg:
            ctx.facts.instance_security_group = instances_sg["GroupId"]
        if found:
            ctx.facts.file_system_id = found["FileSystemId"]
        elif ctx.dry_run:
            # The plan still renders the bundle (step 13); a real deploy creates the file system first.
            ctx.facts.file_system_id = OFFLINE_FILE_SYSTEM_ID
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
        aws = ctx.aws()
        token, instances_sg_name, efs_sg_name = self._names(ctx)
        done = []
        with plain_aws_errors():
            vpc, zones = _zones(ctx)
            sg = ec2.find_security_group(aws.client("ec2"), vpc, instances_sg_name)
            if sg is None:
                sg_id = ec2.create_security_group(aws.client("ec2"), vpc, instances_sg_name,
                                                  "Sifu Elastic Beanstalk instances (EFS admits NFS from this group)",
                                                  names.tags(ctx.settings))
                done.append(f"created security group {instances_sg_name}")
            else:
                sg_id = sg["GroupId"]
            fs_id, more = efs.ensure_file_system(
                aws.client("efs"), aws.client("ec2"), creation_token=token, tags={**names.tags(ctx.settings), "Name": token},
                subnets_by_zone=zones, vpc_id=vpc, instance_sg=sg_id, mount_sg_name=efs_sg_name,
                availability_zone=ctx.settings.efs.availability_zone)
        ctx.facts.instance_security_group = sg_id
        ctx.facts.file_system_id = fs_id
        return "; ".join(done + more) or "already in place"


def _instances_group(ctx: Context, vpc: str, create: bool) -> str | None:
    """Our security group for the EB instances (EFS and RDS admit traffic only from it)."""
    name = names.instances_security_group(ctx.settings)
    client = ctx.aws().client("ec2")
    found = ec2.find_security_group(client, vpc, name)
    if found:
        return found["GroupId"]
    if not create:
        return None
    return ec2.create_security_group(client, vpc, name, "Sifu Elastic Beanstalk instances (EFS and RDS admit "
                                     "traffic from this group only)", names.tags(ctx.settings))


@dataclass
class ManagedDatabase:
    """Seed step 14 (database): with rds.mode managed, a PostgreSQL instance created by us outside the EB
    environment, with deletion protection, reachable only from our instances; terminating or rebuilding the
    environment never touches it. Its password goes to SSM (step "Secrets in SSM"), never into the bundle."""

    number: int | str = "14a"
    name: str = "Managed database"

    def _names(self, ctx: Context) -> tuple[str, str]:
        """(DB instance identifier, its security group name): the same name for both."""
        name = names.database_identifier(ctx.settings)
        return name, name

    def check(self, ctx: Context) -> Check:
        s = ctx.settings
        if s.rds.mode != "managed":
            return Check.ok(f"rds.mode is {s.rds.mode}: no managed database")
        if not s.rds.password.get_secret_value():
            raise StepError("rds.mode is managed but rds.password (RDS_PASSWORD) is empty: set it; it is stored in "
                            "SSM as a SecureString and never written into the bundle")
        identifier, sg_name = self._names(ctx)
        aws = ctx.aws()
        with plain_aws_errors():
            found = rds.find_db_instance(aws.client("rds"), identifier)
            vpc = ec2.default_vpc_id(aws.client("ec2"))
            sg = ec2.find_security_group(aws.client("ec2"), vpc, sg_name) if vpc else None
            instances_sg = _instances_group(ctx, vpc, create=False) if vpc else None
        actions = []
        if instances_sg is None:
            actions.append(Action("create", f"security group {names.instances_security_group(s)}"))
        if sg is None or not (instances_sg and ec2.allows_from_group(sg, s.rds.port, instances_sg)):
            actions.append(Action("allow", f"{s.rds.port}/tcp into {sg_name}", "from our instances only"))
        if found is None:
            actions.append(Action("create", f"RDS PostgreSQL {identifier}",
                                  f"{s.rds.instance_class}, {s.rds.allocated_storage} GiB, encrypted, deletion protection"))
        else:
            ctx.facts.rds_endpoint = (found.get("Endpoint") or {}).get("Address")
            if not found.get("DeletionProtection"):
                raise StepError(f"RDS {identifier} exists without deletion protection: turn it on (`aws rds "
                                f"modify-db-instance --db-instance-identifier {identifier} --deletion-protection`)")
        if not actions:
            return Check.ok(f"{identifier}: {found.get('DBInstanceStatus')}, {ctx.facts.rds_endpoint}")
        return Check.change(f"{len(actions)} change(s) for the database", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        s = ctx.settings
        identifier, sg_name = self._names(ctx)
        aws = ctx.aws()
        done = []
        with plain_aws_errors():
            vpc = ec2.default_vpc_id(aws.client("ec2"))
            instances_sg = _instances_group(ctx, vpc, create=True)
            ctx.facts.instance_security_group = instances_sg
            sg = ec2.find_security_group(aws.client("ec2"), vpc, sg_name)
            if sg is None:
                sg_id = ec2.create_security_group(aws.client("ec2"), vpc, sg_name,
                                                  "PostgreSQL from the Sifu instances only", names.tags(ctx.settings))
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
                    tags=names.tags(ctx.settings))
                done.append(f"created RDS {identifier}")
        ctx.facts.rds_endpoint = (found.get("Endpoint") or {}).get("Address")
        return "; ".join(done) or "already in place"


# Secrets the deploy generates once and keeps in SSM: Sifu's signing key, and the service token the smoke
# check (step 14f) reads back to act as staff through Sifu's API.
GENERATED_SECRETS = ("SIFU_SECRET_KEY", "SIFU_SERVICE_TOKEN")


@dataclass
class Secrets:
    """Secrets go to SSM Parameter Store as SecureString; EB gets their ARNs, never their values."""

    number: int | str = "14a"
    name: str = "Secrets in SSM"

    def _wanted(self, ctx: Context) -> dict[str, tuple[str, str | None]]:
        """{container variable: (parameter name, value)}; value None means: generate once (the signing key),
        or for a secret left empty in the configuration, keep what is stored."""
        s = ctx.settings
        values = {
            "EDX_OAUTH2_CLIENT_SECRET": s.edx.oauth2_client_secret.get_secret_value() or None,
            "RDS_PASSWORD": s.rds.password.get_secret_value() or None,
        }
        return {var: (name, values.get(var)) for var, name in secret_parameter_names(s).items()}

    def check(self, ctx: Context) -> Check:
        client = ctx.aws().client("ssm")
        actions, arns = [], {}
        with plain_aws_errors():
            for var, (name, value) in self._wanted(ctx).items():
                arn = ssm.parameter_arn(client, name)
                if arn:
                    arns[var] = arn
                if value is None:
                    if arn is None and var not in GENERATED_SECRETS:
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
        ctx.facts.secret_parameters = {var: name for var, (name, _) in self._wanted(ctx).items()}
        ctx.facts.secret_arns = arns
        if not actions:
            return Check.ok(f"{len(arns)} SecureString parameter(s) in place")
        return Check.change(f"{len(actions)} secret(s) to store", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        client = ctx.aws().client("ssm")
        done = []
        with plain_aws_errors():
            for var, (name, value) in self._wanted(ctx).items():
                if value is None:
                    if ssm.parameter_arn(client, name) is not None:
                        continue  # kept as stored; generated once (a new signing key signs everyone out)
                    value = secrets.token_urlsafe(48)
                ui.register_secret(value)
                done += ssm.ensure_secure_parameter(client, name, value, tags=names.tags(ctx.settings))
                ctx.facts.secret_arns[var] = ssm.parameter_arn(client, name)
        return "; ".join(done) or "already in place"
