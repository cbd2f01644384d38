"""Tasks around a deployed environment: container logs from the instances, and the AWS sandbox."""

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


SANDBOX_KEY_PAIR = "sandbox"


@task(help={"port": "port for the emulated AWS endpoint (default: a free one)",
            "region": "region to emulate (default us-east-1)"})
def sandbox(c, port=0, region="us-east-1"):
    """Start an emulated AWS (moto + faithful Elastic Beanstalk) and a local registry for ECR; print the env vars.

    Runs in the foreground until Ctrl-C; everything it holds is gone afterwards. Export the printed
    variables in another shell, then `inv plan` / `inv deploy --yes` / `inv status` work without an
    AWS account (the image is built by your dockerd, DOCKER_HOST, and pushed to the local registry). Instances it "launches" do not exist, so converge and the smoke check fail
    unless you point them somewhere (see the README, "Sandbox").
    """
    import signal
    import threading

    from deployer import REPO_ROOT, ui

    import shutil
    import tempfile
    from pathlib import Path

    try:
        from tests.support.aws import MotoServer
        from tests.support.registry import start_registry, stop_registry
    except ImportError as exc:
        raise fail(f"the sandbox needs the test support code and moto (the dev dependencies): {exc}") from None
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    server = MotoServer(port=int(port) or None, log_path=REPO_ROOT / "build" / "sandbox-moto.log")
    server.start()
    registry_root = Path(tempfile.mkdtemp(prefix="sifu-sandbox-registry-"))
    registry = None
    stop = threading.Event()
    try:
        # moto's ECR gives login details with no registry behind them: a local one stands in for its endpoint.
        registry = start_registry(registry_root, username="sandbox")
        server.client("ec2", region).create_key_pair(KeyName=SANDBOX_KEY_PAIR)
        env = {**server.env(region), "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
               "DEPLOY__EB__KEY_NAME": SANDBOX_KEY_PAIR, "DEPLOY__EB__REGION": region,
               "DEPLOY__EFS__REGION": region, "DEPLOY__ECR__REGION": region,
               "SIFU_ECR_STANDIN_REGISTRY": registry.host, "SIFU_ECR_STANDIN_USERNAME": registry.username,
               "SIFU_ECR_STANDIN_PASSWORD": registry.password}
        ui.say(f"emulated AWS on {server.endpoint} (log: build/sandbox-moto.log); key pair '{SANDBOX_KEY_PAIR}' "
               f"created; a local registry on {registry.host} stands in for ECR's endpoint. In another shell:")
        for name, value in env.items():
            print(f"export {name}={value}", flush=True)
        ui.say("then: inv plan · inv deploy --yes · inv status. Ctrl-C stops the sandbox.")
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    finally:
        if registry is not None:
            stop_registry(registry)
        shutil.rmtree(registry_root, ignore_errors=True)
        server.stop()
        ui.say("sandbox stopped")


ns = Collection(logs, sandbox)
