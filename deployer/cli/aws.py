"""Tasks on the deployed environment: status, rollback, destroy (the work is in deployer/environment.py)."""

from invoke import Collection, task

from deployer.cli.common import ENV_HELP, JSON_HELP, fail, is_tty, load_config


@task(help={"env": ENV_HELP, "json": JSON_HELP,
            "ssh": "SSH to the instances for what students use (default); --no-ssh: read AWS only"})
def status(c, env=None, json=False, ssh=True):
    """Show the environment, its instances and EFS, and (over SSH) students, kernels, memory and disk (read-only).

    AWS: status, health, version, URL, instances, the EFS mount targets. Over SSH, from sifu.usage in each
    instance's app container: per instance its active students, kernels and memory; per student their kernels,
    memory and disk. An instance SSH cannot reach, or without an app container, is one line saying why (exit 0);
    --no-ssh skips SSH.
    """
    import json as jsonlib

    from deployer import environment, ui
    from deployer.remote.usage import mib

    try:
        data = environment.status(load_config(env).settings, over_ssh=ssh)
    except environment.OperationError as exc:
        raise fail(str(exc)) from None
    if json:
        print(jsonlib.dumps(data, indent=2))
        return
    ui.say(f"{data['environment']}: {data['status']}, health {data['health']}, version {data['version']}")
    ui.say(f"URL: {data['url']}   platform: {(data['platform'] or '').split('platform/')[-1]}")
    ui.table(["instance", "state", "zone", "public IP", "private IP"],
             [[i["id"], i["state"], i["zone"], i["public_ip"] or "-", i["private_ip"] or "-"] for i in data["instances"]])
    fs = data["efs"]
    ui.say(f"EFS {fs['file_system_id']}: mount targets in {', '.join(fs['mount_targets']) or 'no zone'}"
           if fs["file_system_id"] else "EFS: none found")
    if data["usage"] is None:
        return
    ui.table(["instance", "students", "kernels", "memory", "note"],
             [[i["instance"], "-", "-", "-", i["error"]] if i["error"] else
              [i["instance"], str(i["students"]), str(i["kernels"]), mib(i["memory_kib"]), ""]
              for i in data["usage"]["instances"]], title="students per instance (memory: PSS of their processes)")
    ui.table(["student", "instance", "kernels", "memory", "disk"],
             [[r["student"], r["instance"] or "-", str(r["kernels"]), mib(r["memory_kib"]), mib(r["disk_kib"])]
              for r in data["usage"]["students"]], title="per student")


@task(help={"env": ENV_HELP, "to": "version label to return to (default: the version before the current one)",
            "no_wait": "do not wait for the environment to become Ready"})
def rollback(c, env=None, to=None, no_wait=False):
    """Deploy an earlier application version again (default: the one before the current one) and wait."""
    from deployer import environment

    try:
        environment.rollback(load_config(env).settings, to=to, wait=not no_wait)
    except environment.OperationError as exc:
        raise fail(str(exc)) from None


@task(help={"env": ENV_HELP,
            "purge": "also delete the EFS file system (notebooks!), the ECR repository, the SSM secrets and the "
                     "application; asks you to type the environment name",
            "confirm": "the environment name, to confirm --purge without a TTY",
            "yes": "confirm terminating the environment without a TTY"})
def destroy(c, env=None, purge=False, confirm=None, yes=False):
    """Terminate the environment; EFS, RDS and ECR are kept unless --purge is given and confirmed."""
    from deployer import environment

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
    try:
        environment.destroy(settings, purge=purge)
    except environment.OperationError as exc:
        raise fail(str(exc)) from None


ns = Collection(status, rollback, destroy)
