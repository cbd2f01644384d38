"""Operations on a deployed environment: its status, a rollback to an earlier version, destroying it and,
with --purge, what the deploy created around it. The tasks in deployer/cli/aws.py ask and print; this
does the work, on deployer/aws.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from deployer import kept_images, names, ui
from deployer.aws import Aws, eb, ec2, ecr, efs, sdk_errors, ssm, sts
from deployer.config import Settings
from deployer.remote import executor, usage
from deployer.render import secret_parameter_names

Emit = Callable[[str], None]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OperationError(Exception):
    """The operation cannot go on; the message says what is wrong and what to do."""


def aws(s: Settings, read_only: bool = False) -> Aws:
    return Aws(profile=s.aws.profile or None, region=s.eb.region, read_only=read_only)


def _environment(client: Any, s: Settings) -> dict[str, Any]:
    found = eb.find_environment(client, s.eb.application, s.eb.environment)
    if found is None:
        raise OperationError(f"no environment {s.eb.environment} in application {s.eb.application} "
                             f"({s.eb.region}): deploy it with `inv deploy`")
    return found


def _wait(client: Any, s: Settings, since: datetime, request: dict[str, Any], until: tuple[str, ...], emit: Emit,
          expect_version: str | None = None) -> None:
    """Wait for the environment to reach ``until`` after ``request``, showing EB's events as they come."""
    def show(event: dict) -> None:
        emit(f"    {event['EventDate']:%H:%M:%S} {event['Severity']:<5} {event['Message']}")

    eb.wait_for_environment(client, s.eb.environment, since, show, until=until, expect_version=expect_version,
                            request_id=request["ResponseMetadata"]["RequestId"], timeout=s.eb.wait_timeout,
                            health_grace=s.eb.health_grace, interval=s.eb.poll_interval)


def _file_system(client: Any, s: Settings) -> dict[str, Any] | None:
    if s.efs.file_system_id:
        return efs.describe_file_system(client, s.efs.file_system_id)
    return efs.find_file_system(client, names.efs_creation_token(s))


def status(s: Settings, over_ssh: bool = True) -> dict[str, Any]:
    """The environment (status, health, version, URL, platform), its instances and the file system's mount
    targets; read-only. With ``over_ssh``, also what students use on each instance (`usage`: kernels, memory,
    disk, from sifu.usage in the app container); an instance SSH cannot reach gets an error there, not figures."""
    access = aws(s, read_only=True)
    client = access.client("elasticbeanstalk")
    try:
        found = _environment(client, s)
        instances = ec2.instances(access.client("ec2"), eb.instance_ids(client, s.eb.environment))
        fs = _file_system(access.client("efs"), s)
        targets = efs.mount_targets(access.client("efs"), fs["FileSystemId"]) if fs else []
    except sdk_errors() as exc:
        raise OperationError(str(exc)) from None
    return {
        "environment": s.eb.environment, "status": found["Status"], "health": found.get("Health"),
        "version": found.get("VersionLabel"), "url": f"http://{found.get('CNAME')}",
        "platform": found.get("PlatformArn"),
        "instances": [{"id": i.id, "state": i.state, "zone": i.availability_zone, "public_ip": i.public_ip,
                       "private_ip": i.private_ip} for i in instances],
        "efs": {"file_system_id": fs["FileSystemId"] if fs else None,
                "mount_targets": sorted(t.get("AvailabilityZoneName", t["SubnetId"]) for t in targets),
                # Whether each instance has it mounted needs SSH; `inv converge` checks and fixes that.
                "mounted_on_instances": "unknown without SSH"},
        "aws_calls": access.counter.as_dict(),
        "usage": student_usage(s, instances) if over_ssh else None,
    }


def student_usage(s: Settings, instances: list[ec2.Instance]) -> dict[str, Any]:
    """Per instance and per student: kernels, memory and disk (deployer/remote/usage.py), over SSH to the
    addresses converge would use."""
    through_bastion = bool(s.ssh.gateway or s.ssh.proxy_command)
    targets = {i.id: address for i in instances
               if i.state == "running" and (address := ec2.ssh_address(i, through_bastion))}
    found = {u.instance: u for u in executor.student_usage(targets, s)}
    return usage.summary([found.get(i.id) or usage.InstanceUsage(
        i.id, "", error="no address to SSH to" if i.state == "running" else f"{i.state}, not running")
        for i in instances])


def rollback_target(s: Settings, labels: list[str], current: str | None, to: str | None) -> str:
    """The version to return to: ``to`` if it exists, else the one before ``current`` (labels newest first)."""
    if to:
        if to not in labels:
            raise OperationError(f"no version {to!r} in {s.eb.application}; known: {', '.join(labels[:10])}")
        return to
    older = labels[labels.index(current) + 1:] if current in labels else []
    if not older:
        raise OperationError(f"{s.eb.environment} runs {current}, and there is no earlier version to return to")
    return older[0]


def rollback(s: Settings, to: str | None = None, wait: bool = True, emit: Emit = ui.say) -> None:
    """Deploy an earlier application version again and (unless ``wait`` is False) wait until it runs."""
    access = aws(s)
    client = access.client("elasticbeanstalk")
    try:
        found = _environment(client, s)
        current = found.get("VersionLabel")
        target = rollback_target(s, eb.version_labels(client, s.eb.application), current, to)
        if target == current:
            emit(f"{s.eb.environment} already runs {target}: no changes")
            return
        if found["Status"] != "Ready":
            raise OperationError(f"{s.eb.environment} is {found['Status']}; wait until it is Ready (`inv status`)")
        since = eb.latest_event_time(client, s.eb.environment) or EPOCH
        request = eb.update_environment(client, s.eb.environment, version_label=target)
        emit(f"rolling {s.eb.environment} back from {current} to {target}")
        if not wait:
            return
        _wait(client, s, since, request, ("Ready",), emit, expect_version=target)
        emit(f"{s.eb.environment} Ready, version {target}")
        # The version now live and its own rollback target keep their images (ECR-LIFECYCLE-PROTECT).
        account = sts.caller_identity(access.client("sts")).account
        for line in kept_images.apply(access, s, kept_images.plan(access, s, account, target)):
            emit(line)
    except sdk_errors() as exc:
        raise OperationError(str(exc)) from None


def destroy(s: Settings, purge: bool = False, emit: Emit = ui.say, sleep: Callable[[float], None] = time.sleep) -> None:
    """Terminate the environment and wait; with ``purge``, then delete what the deploy created outside it.
    The caller has the operator confirm first."""
    access = aws(s)
    client = access.client("elasticbeanstalk")
    name = s.eb.environment
    try:
        if eb.find_environment(client, s.eb.application, name):
            since = eb.latest_event_time(client, name) or EPOCH
            request = eb.terminate_environment(client, name)
            emit(f"terminating {name}")
            _wait(client, s, since, request, ("Terminated",), emit)
            emit(f"{name} terminated")
        else:
            emit(f"{name} does not exist: nothing to terminate")
        if purge:
            for line in _purge(access, s, sleep):
                emit(line)
        else:
            emit("kept: EFS file system, database, ECR repository, SSM secrets (use --purge to delete them)")
    except sdk_errors() as exc:
        raise OperationError(str(exc)) from None


def _purge(access: Aws, s: Settings, sleep: Callable[[float], None]) -> list[str]:
    """Delete what the deploy created outside the environment; each part is skipped when already gone."""
    done = []
    fs = efs.find_file_system(access.client("efs"), names.efs_creation_token(s))
    if fs:
        efs.delete_file_system(access.client("efs"), fs["FileSystemId"], sleep=sleep)
        done.append(f"deleted EFS {fs['FileSystemId']} and its mount targets")
    ec2_client = access.client("ec2")
    vpc = ec2.default_vpc_id(ec2_client)
    # The instances' group admits the load balancer's: delete it first.
    for group_name in (names.efs_security_group(s), names.instances_security_group(s),
                       names.load_balancer_security_group(s)):
        group = ec2.find_security_group(ec2_client, vpc, group_name) if vpc else None
        if group:
            ec2.delete_security_group(ec2_client, group["GroupId"])
            done.append(f"deleted security group {group_name}")
    ecr_client = access.client("ecr", region=s.ecr.region)
    if ecr.find_repository(ecr_client, s.ecr.repository):
        ecr.delete_repository(ecr_client, s.ecr.repository)
        done.append(f"deleted ECR repository {s.ecr.repository}")
    deleted = ssm.delete_parameters(access.client("ssm"), list(secret_parameter_names(s).values()))
    if deleted:
        done.append(f"deleted {len(deleted)} SSM parameter(s)")
    eb_client = access.client("elasticbeanstalk")
    if eb.find_application(eb_client, s.eb.application) and not eb.list_environments(eb_client, s.eb.application):
        eb.delete_application(eb_client, s.eb.application)
        done.append(f"deleted application {s.eb.application}")
    return done or ["nothing else to delete"]
