"""Tasks on the deployed environment: status, rollback, destroy."""

from invoke import Collection, task

from deployer.cli.common import ENV_HELP, JSON_HELP, fail, is_tty, load_config


def _aws(settings, read_only: bool = False):
    from deployer.aws import Aws

    return Aws(profile=settings.aws.profile or None, region=settings.eb.region, read_only=read_only)


def _environment_or_exit(client, settings):
    from deployer.aws import eb

    env = eb.find_environment(client, settings.eb.application, settings.eb.environment)
    if env is None:
        raise fail(f"no environment {settings.eb.environment} in application {settings.eb.application} "
                   f"({settings.eb.region}): deploy it with `inv deploy`")
    return env


def _wait(client, settings, name: str, request: dict, until: tuple[str, ...], expect_version: str | None = None):
    from deployer import ui
    from deployer.aws import eb, sdk_errors

    def show(event: dict) -> None:
        ui.say(f"    {event['EventDate']:%H:%M:%S} {event['Severity']:<5} {event['Message']}")

    try:
        return eb.wait_for_environment(client, name, request["since"], show, until=until,
                                       expect_version=expect_version, request_id=request["request_id"],
                                       timeout=settings.eb.wait_timeout, interval=settings.eb.poll_interval)
    except sdk_errors() as exc:
        raise fail(str(exc)) from None


@task(help={"env": ENV_HELP, "json": JSON_HELP})
def status(c, env=None, json=False):
    """Show the environment: status, health, version, URL, instances and the EFS mount targets (read-only)."""
    import json as jsonlib

    from deployer import ui
    from deployer.aws import ec2, eb, efs, sdk_errors

    settings = load_config(env).settings
    aws = _aws(settings, read_only=True)
    client = aws.client("elasticbeanstalk")
    try:
        found = _environment_or_exit(client, settings)
        instances = ec2.instances(aws.client("ec2"), eb.instance_ids(client, settings.eb.environment))
        token = f"{settings.project.name}-{settings.eb.environment}-notebooks"
        fs = (efs.describe_file_system(aws.client("efs"), settings.efs.file_system_id) if settings.efs.file_system_id
              else efs.find_file_system(aws.client("efs"), token))
        targets = efs.mount_targets(aws.client("efs"), fs["FileSystemId"]) if fs else []
    except sdk_errors() as exc:
        raise fail(str(exc)) from None
    data = {
        "environment": settings.eb.environment, "status": found["Status"], "health": found.get("Health"),
        "version": found.get("VersionLabel"), "url": f"http://{found.get('CNAME')}",
        "platform": found.get("PlatformArn"),
        "instances": [{"id": i.id, "state": i.state, "zone": i.availability_zone, "public_ip": i.public_ip,
                       "private_ip": i.private_ip} for i in instances],
        "efs": {"file_system_id": fs["FileSystemId"] if fs else None,
                "mount_targets": sorted(t.get("AvailabilityZoneName", t["SubnetId"]) for t in targets),
                # Whether each instance has it mounted needs SSH; `inv converge` checks and fixes that.
                "mounted_on_instances": "unknown without SSH"},
        "aws_calls": aws.counter.as_dict(),
    }
    if json:
        print(jsonlib.dumps(data, indent=2))
        return
    ui.say(f"{data['environment']}: {data['status']}, health {data['health']}, version {data['version']}")
    ui.say(f"URL: {data['url']}   platform: {(data['platform'] or '').split('platform/')[-1]}")
    ui.table(["instance", "state", "zone", "public IP", "private IP"],
             [[i["id"], i["state"], i["zone"], i["public_ip"] or "-", i["private_ip"] or "-"] for i in data["instances"]])
    efs_line = (f"EFS {data['efs']['file_system_id']}: mount targets in {', '.join(data['efs']['mount_targets']) or 'no zone'}"
                if fs else "EFS: none found")
    ui.say(efs_line)


@task(help={"env": ENV_HELP, "to": "version label to return to (default: the version before the current one)",
            "no_wait": "do not wait for the environment to become Ready"})
def rollback(c, env=None, to=None, no_wait=False):
    """Deploy an earlier application version again (default: the one before the current one) and wait."""
    from datetime import UTC, datetime

    from deployer import ui
    from deployer.aws import eb, sdk_errors

    settings = load_config(env).settings
    aws = _aws(settings)
    client = aws.client("elasticbeanstalk")
    try:
        found = _environment_or_exit(client, settings)
        current = found.get("VersionLabel")
        versions = client.describe_application_versions(ApplicationName=settings.eb.application)["ApplicationVersions"]
        labels = [v["VersionLabel"] for v in sorted(versions, key=lambda v: v["DateCreated"], reverse=True)]
        if to:
            if to not in labels:
                raise fail(f"no version {to!r} in {settings.eb.application}; known: {', '.join(labels[:10])}")
            target = to
        else:
            older = labels[labels.index(current) + 1:] if current in labels else []
            if not older:
                raise fail(f"{settings.eb.environment} runs {current}, and there is no earlier version to return to")
            target = older[0]
        if target == current:
            ui.say(f"{settings.eb.environment} already runs {target}: no changes")
            return
        if found["Status"] != "Ready":
            raise fail(f"{settings.eb.environment} is {found['Status']}; wait until it is Ready (`inv status`)")
        since = eb.latest_event_time(client, settings.eb.environment) or datetime(1970, 1, 1, tzinfo=UTC)
        request = eb.update_environment(client, settings.eb.environment, version_label=target)
    except sdk_errors() as exc:
        raise fail(str(exc)) from None
    ui.say(f"rolling {settings.eb.environment} back from {current} to {target}")
    if no_wait:
        return
    _wait(client, settings, settings.eb.environment,
          {"since": since, "request_id": request["ResponseMetadata"]["RequestId"]}, ("Ready",), expect_version=target)
    ui.say(f"{settings.eb.environment} Ready, version {target}")


@task(help={"env": ENV_HELP,
            "purge": "also delete the EFS file system (notebooks!), the ECR repository, the SSM secrets and the "
                     "application; asks you to type the environment name",
            "confirm": "the environment name, to confirm --purge without a TTY",
            "yes": "confirm terminating the environment without a TTY"})
def destroy(c, env=None, purge=False, confirm=None, yes=False):
    """Terminate the environment; EFS, RDS and ECR are kept unless --purge is given and confirmed."""
    from datetime import UTC, datetime

    from deployer import ui
    from deployer.aws import eb, sdk_errors

    settings = load_config(env).settings
    name = settings.eb.environment
    if purge:
        typed = confirm if confirm is not None else (input(f"type {name} to delete it and its data: ") if is_tty() else None)
        if typed != name:
            raise fail(f"--purge deletes notebooks and images: confirm by typing the environment name ({name}), "
                       f"or pass --confirm {name}")
    elif not yes:
        if not is_tty() or input(f"terminate {name}? [y/N] ").strip().lower() != "y":
            raise fail(f"not terminating {name}: confirm on a TTY or pass --yes")
    aws = _aws(settings)
    client = aws.client("elasticbeanstalk")
    try:
        found = eb.find_environment(client, settings.eb.application, name)
        if found:
            since = eb.latest_event_time(client, name) or datetime(1970, 1, 1, tzinfo=UTC)
            request = eb.terminate_environment(client, name)
            ui.say(f"terminating {name}")
            _wait(client, settings, name, {"since": since, "request_id": request["ResponseMetadata"]["RequestId"]},
                  ("Terminated",))
            ui.say(f"{name} terminated")
        else:
            ui.say(f"{name} does not exist: nothing to terminate")
        if purge:
            for line in _purge(aws, settings):
                ui.say(line)
        else:
            ui.say("kept: EFS file system, database, ECR repository, SSM secrets (use --purge to delete them)")
    except sdk_errors() as exc:
        raise fail(str(exc)) from None


def _purge(aws, settings) -> list[str]:
    """Delete what the deploy created outside the environment; each part is skipped when already gone."""
    import time

    from deployer.aws import ec2, ecr, efs, eb
    from deployer.render import secret_parameter_names

    done = []
    base = f"{settings.project.name}-{settings.eb.environment}"
    efs_client, ec2_client = aws.client("efs"), aws.client("ec2")
    fs = efs.find_file_system(efs_client, f"{base}-notebooks")
    if fs:
        for target in efs.mount_targets(efs_client, fs["FileSystemId"]):
            efs_client.delete_mount_target(MountTargetId=target["MountTargetId"])
        for _ in range(60):
            if not efs.mount_targets(efs_client, fs["FileSystemId"]):
                break
            time.sleep(5)
        efs_client.delete_file_system(FileSystemId=fs["FileSystemId"])
        done.append(f"deleted EFS {fs['FileSystemId']} and its mount targets")
    vpc = ec2.default_vpc_id(ec2_client)
    for group_name in (f"{base}-efs", f"{base}-instances"):
        group = ec2.find_security_group(ec2_client, vpc, group_name) if vpc else None
        if group:
            ec2_client.delete_security_group(GroupId=group["GroupId"])
            done.append(f"deleted security group {group_name}")
    ecr_client = aws.client("ecr", region=settings.ecr.region)
    if ecr.find_repository(ecr_client, settings.ecr.repository):
        ecr_client.delete_repository(repositoryName=settings.ecr.repository, force=True)
        done.append(f"deleted ECR repository {settings.ecr.repository}")
    ssm_client = aws.client("ssm")
    names = list(secret_parameter_names(settings).values())
    existing = [p["Name"] for p in ssm_client.get_parameters(Names=names)["Parameters"]]
    if existing:
        ssm_client.delete_parameters(Names=existing)
        done.append(f"deleted {len(existing)} SSM parameter(s)")
    eb_client = aws.client("elasticbeanstalk")
    if eb.find_application(eb_client, settings.eb.application) and not eb.list_environments(
            eb_client, settings.eb.application):
        eb_client.delete_application(ApplicationName=settings.eb.application)
        done.append(f"deleted application {settings.eb.application}")
    return done or ["nothing else to delete"]


ns = Collection(status, rollback, destroy)
