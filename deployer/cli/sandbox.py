"""The sandbox: an emulated AWS account (moto + the sandbox's Elastic Beanstalk) with a local registry behind ECR."""

from invoke import Collection, task

from deployer.cli.common import fail


@task(help={"port": "port for the emulated AWS endpoint (default: a free one)",
            "region": "region to emulate (default us-east-1)",
            "instances": "run a whole deployment: N instance hosts, load balancer, EFS and RDS stand-ins (root)"})
def sandbox(c, port=0, region="us-east-1", instances=0):
    """Start an emulated AWS (moto + faithful Elastic Beanstalk, ECR with a local registry); print the env vars.

    Runs in the foreground until Ctrl-C; everything it holds is gone afterwards. Export the printed
    variables in another shell, then `inv plan` / `inv deploy --yes` / `inv status` work without an
    AWS account. Without --instances the image is built by your dockerd (DOCKER_HOST) and the instances EB
    "launches" are records only, so converge and the smoke check fail unless you point them somewhere. With
    --instances N (as root) every instance is a host on this machine that runs what the Elastic Beanstalk
    platform runs, behind a load balancer, with EFS, RDS, a Docker engine for the build and a development LMS;
    run the deploy through the printed client command so that the environment's CNAME resolves.
    """
    import shlex
    import signal
    import threading

    from deployer import REPO_ROOT, ui

    try:
        from sandbox.session import KEY_PAIR, running_sandbox
    except ImportError as exc:
        raise fail(f"the sandbox needs moto (the test dependencies: pip install -e '.[test]'): {exc}") from None
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    stop = threading.Event()
    try:
        session = running_sandbox(region, port=int(port) or None, log_path=REPO_ROOT / "build" / "sandbox-moto.log",
                                  instances=int(instances))
        box = session.__enter__()
    except (PermissionError, RuntimeError) as exc:
        raise fail(f"the sandbox did not start: {exc}") from None
    try:
        ui.say(f"key pair '{KEY_PAIR}' created; log: build/sandbox-moto.log. Started:")
        for line in box.started:
            ui.say(f"  - {line}")
        ui.say("In another shell:")
        for name, value in box.env.items():
            print(f"export {name}={shlex.quote(value)}", flush=True)
        if box.secrets_file:
            print(f"set -a; . {shlex.quote(str(box.secrets_file))}; set +a", flush=True)
        run = f"{box.client} ./inv" if box.client else "inv"
        ui.say(f"then: {run} plan · {run} deploy --yes · {run} status. Ctrl-C stops the sandbox.")
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    finally:
        session.__exit__(None, None, None)
    ui.say("sandbox stopped")


ns = Collection(sandbox)
