"""Tasks that build and push the container image."""

from __future__ import annotations

import os

from invoke import Collection, task

from deployer.cli.common import ENV_HELP, fail, is_tty, load_config

NETWORK_HELP = "network for the build's RUN steps (e.g. host when the engine has no bridge network)"
PASSWORD_ENV = "REGISTRY_PASSWORD"


def build_log(item: dict) -> None:
    """Build output as it arrives, one line each, prefixed with the image being built."""
    from deployer import ui

    ui.say(f"  {item['image'].split(':')[0]} | {item['line']}")


class PushProgress:
    """Push progress: a rich bar per layer on a terminal, otherwise one line per layer state change (the bars
    start with the first layer, so build output before the push prints as usual)."""

    def __init__(self, target: str):
        self.target = target
        self.states: dict[str, str] = {}
        self.bars = None
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        return self

    def _start_bars(self) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), transient=False)
        self.bars.start()

    def __exit__(self, *exc):
        if self.bars:
            self.bars.stop()

    def __call__(self, item: dict) -> None:
        from deployer import ui

        layer, status = item.get("id"), item.get("status", "")
        if not layer or not status or layer == self.target.rpartition(":")[2]:
            return
        detail = item.get("progressDetail") or {}
        if self.bars is None and is_tty():
            self._start_bars()
        if self.bars:
            if layer not in self.tasks:
                self.tasks[layer] = self.bars.add_task(f"{layer} {status}", total=detail.get("total"))
            self.bars.update(self.tasks[layer], description=f"{layer} {status}", completed=detail.get("current"),
                             total=detail.get("total"))
            if status in ("Pushed", "Layer already exists", "Mounted from"):
                task_id = self.tasks[layer]
                total = self.bars.tasks[task_id].total or 1
                self.bars.update(task_id, total=total, completed=total)
        elif self.states.get(layer) != status:
            self.states[layer] = status
            ui.say(f"  layer {layer}: {status}")


def _say_built(built) -> None:
    from deployer import ui

    for ref in built.present:
        ui.say(f"up to date: {ref} exists; not rebuilt")
    for ref in built.built:
        ui.say(f"built: {ref} in {built.seconds[ref]:.1f}s")


def _say_plan(plan) -> None:
    from deployer import ui

    for spec in plan.specs():
        ui.say(f"image {spec.ref}")


@task(help={"env": ENV_HELP, "network": NETWORK_HELP})
def build_image(c, env=None, network=None):
    """Build the app image (and its base) unless an image with the same content-hash tag exists.

    The tag is a hash of every build input: the Dockerfiles, sifu/, the rendered supervisord and
    Jupyter configs, constraints.txt and Sifu's dependency list, and the build args. A re-run with
    no input changed builds nothing. With sifu.source git, Sifu is cloned from the private repository
    with the deployment token ($DEPLOYMENT_TOKEN or .deployment_token, mode 0600) as a BuildKit secret.
    Uses the Docker engine from DOCKER_HOST (default: the local socket).
    """
    from deployer import image, ui
    from deployer.docker_client import DockerError

    s = load_config(env).settings
    try:
        plan = image.plan(s)
        _say_plan(plan)
        built = image.build(s, network=network, progress=build_log, prompt=image.tty_prompt(), image_plan=plan)
    except (image.ImageError, DockerError) as exc:
        raise fail(str(exc)) from None
    _say_built(built)
    ui.say(f"{'built' if built.changed else 'no build needed'}: {plan.final.ref}")


@task(help={"registry": "registry host[:port][/path] to push to, e.g. 127.0.0.1:5000 (required)",
            "username": f"log in as this user first; the password comes from ${PASSWORD_ENV} (or a prompt on a terminal)",
            "env": ENV_HELP, "network": NETWORK_HELP})
def push_image(c, registry=None, username=None, env=None, network=None):
    """Push the app image to a registry, building it first if needed; skipped when the registry has the tag.

    Every item of the push stream is checked: a refused push fails this task with the registry's
    message. Credentials are passed to the engine for this push only, never saved. ECR's login is
    done by `inv deploy`; this task works with any registry. Re-running after a push does nothing.
    """
    import getpass

    from deployer import image, ui
    from deployer.docker_client import DockerError

    if not registry:
        raise fail("say where to push: --registry HOST[:PORT][/PATH] (ECR pushes are part of `inv deploy`)")
    s = load_config(env).settings
    password = None
    if username:
        password = os.environ.get(PASSWORD_ENV)
        if password is None and is_tty():
            password = getpass.getpass(f"Password for {username} at {registry}: ")
        if not password:
            raise fail(f"--username {username} needs a password: set {PASSWORD_ENV} (or run on a terminal to be asked)")
        ui.register_secret(password)
    try:
        plan = image.plan(s)
        with PushProgress(image.target_ref(plan.final.ref, registry, s.ecr.repository)) as progress:
            result = image.publish(s, registry, username, password, network=network, build_progress=build_log,
                                   push_progress=progress, prompt=image.tty_prompt(), image_plan=plan,
                                   on_build=_say_plan)
    except (image.ImageError, DockerError) as exc:
        raise fail(str(exc)) from None
    if result.built is None:
        ui.say(f"registry already has {result.target}; nothing to build or push")
        return
    _say_built(result.built)
    if result.pushed.skipped:
        ui.say(f"registry already has {result.pushed.target}; nothing pushed")
    else:
        ui.say(f"pushed {result.pushed.target} ({result.pushed.digest})")


ns = Collection(build_image, push_image)
