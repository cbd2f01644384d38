"""Tasks around a deployed environment: container logs from the instances."""

from invoke import Collection, task

from deployer.cli.common import ENV_HELP, fail, load_config


@task(help={"env": ENV_HELP, "hosts": "comma-separated hosts (user@host:port allowed); default: the environment's "
            "instances", "tail": "how many lines from each instance (default 100)"})
def logs(c, env=None, hosts=None, tail=100):
    """Show the app container's logs (`docker logs`) from every instance, over SSH.

    Finds the instances like `inv converge` does (EC2 instances tagged with the environment); an
    instance that cannot be reached, or has no app container, is named and makes the exit non-zero.
    """
    from deployer import ui
    from deployer.remote import commands, executor, targets

    loaded = load_config(env)
    s = loaded.settings
    try:
        hosts_list = targets.target_hosts(s, hosts)
    except targets.NoTargets as exc:
        raise fail(str(exc), code=2) from None
    command = commands.container_logs(s.remote.container_filter, int(tail), sudo=s.ssh.user != "root")
    outputs = executor.run_raw(hosts_list, command, s)
    failed = []
    for host, (code, out, err) in outputs.items():
        ui.say(f"==> {host} <==")
        if out:
            ui.say(out.rstrip("\n"))
        if code != 0:
            failed.append(f"{host}: {(err.strip() or f'exit {code}')}")
    if failed:
        raise fail("could not read the logs of: " + "; ".join(failed))


ns = Collection(logs)
