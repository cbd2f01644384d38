"""The sandbox: an emulated AWS account (moto + the sandbox's Elastic Beanstalk) with a local registry behind ECR."""

from invoke import Collection, task

from deployer.cli.common import fail


@task(help={"port": "port for the emulated AWS endpoint (default: a free one)",
            "region": "region to emulate (default us-east-1)"})
def sandbox(c, port=0, region="us-east-1"):
    """Start an emulated AWS (moto + faithful Elastic Beanstalk, ECR with a local registry); print the env vars.

    Runs in the foreground until Ctrl-C; everything it holds is gone afterwards. Export the printed
    variables in another shell, then `inv plan` / `inv deploy --yes` / `inv status` work without an
    AWS account (the image is built by your dockerd, DOCKER_HOST, and pushed to the registry that the emulated
    ECR's login names). Instances it "launches" do not exist, so converge and the smoke check fail
    unless you point them somewhere (see sandbox/README.md).
    """
    import signal
    import threading

    from deployer import REPO_ROOT, ui

    try:
        from sandbox.session import KEY_PAIR, running_sandbox
    except ImportError as exc:
        raise fail(f"the sandbox needs moto (the test dependencies: pip install -e '.[test]'): {exc}") from None
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    stop = threading.Event()
    with running_sandbox(region, port=int(port) or None, log_path=REPO_ROOT / "build" / "sandbox-moto.log") as box:
        ui.say(f"emulated AWS on {box.server.endpoint} (log: build/sandbox-moto.log); key pair '{KEY_PAIR}' "
               f"created; ECR's login names the local registry on {box.registry.host}. In another shell:")
        for name, value in box.env.items():
            print(f"export {name}={value}", flush=True)
        ui.say("then: inv plan · inv deploy --yes · inv status. Ctrl-C stops the sandbox.")
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    ui.say("sandbox stopped")


ns = Collection(sandbox)
