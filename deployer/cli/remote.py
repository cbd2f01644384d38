"""Tasks that converge the instances over SSH: mount the notebook volume, point nginx at the app."""

from invoke import Collection, task

from deployer.cli.common import ENV_HELP, fail, load_config

HOSTS_HELP = "comma-separated hosts to converge (user@host:port allowed); default: the environment's instances"
SERIAL_HELP = "one host after another instead of all at once"


def _run(c, phases, env, hosts, serial):
    from deployer import render
    from deployer.remote import executor, hooks, targets

    loaded = load_config(env)
    try:
        hosts_list = targets.target_hosts(loaded.settings, hosts)
    except targets.NoTargets as exc:
        raise fail(str(exc), code=2) from None
    try:
        result = executor.converge(hosts_list, loaded.settings, render.Facts(offline=False), phases=phases, serial=serial)
    except hooks.ConvergeError as exc:
        raise fail(f"cannot converge: {exc}", code=2) from None
    executor.print_results(result)
    if result.failed:
        names = ", ".join(h.host for h in result.failed)
        reasons = "\n".join(f"  {h.host}: {h.error}" for h in result.failed)
        raise fail(f"converge failed on {len(result.failed)} of {len(result.hosts)} host(s): {names}\n{reasons}")


@task(help={"env": ENV_HELP, "hosts": HOSTS_HELP, "serial": SERIAL_HELP})
def mount_efs(c, env=None, hosts=None, serial=False):
    """Mount the notebook volume (EFS, or S3 with storage.kind s3) on every instance.

    Adds the fstab entry (_netdev,nofail) and the .sifu-volume marker, and restarts the app
    container (only it) when its notebook root does not show the volume yet. A host already
    mounted from the right volume is left alone; one mounted from another volume is an error.
    Safe to re-run.
    """
    _run(c, ["mount"], env, hosts, serial)


@task(help={"env": ENV_HELP, "hosts": HOSTS_HELP, "serial": SERIAL_HELP})
def configure_nginx(c, env=None, hosts=None, serial=False):
    """Point nginx on every instance at the app container (vhosts + upstream), then reload it.

    Waits for the container (remote.container_wait seconds), refuses to serve notebooks from an
    instance's own disk, runs nginx -t and restores the previous files if it fails. A re-run with
    nothing to change writes nothing and does not reload.
    """
    _run(c, ["nginx"], env, hosts, serial)


@task(help={"env": ENV_HELP, "hosts": HOSTS_HELP, "serial": SERIAL_HELP})
def converge(c, env=None, hosts=None, serial=False):
    """Mount the volume, then configure nginx, on every instance (the same script as the .platform hook).

    All hosts in parallel unless --serial; a host that is down or fails does not stop the
    others, and the exit is non-zero naming each failed host and why. Safe to re-run.
    """
    _run(c, ["mount", "nginx"], env, hosts, serial)


ns = Collection(mount_efs, configure_nginx, converge)
