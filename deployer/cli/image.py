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
    """Push progress: a rich bar per layer on a terminal, otherwise one line per layer state change."""

    def __init__(self, target: str):
        self.target = target
        self.states: dict[str, str] = {}
        self.bars = None
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        if is_tty():
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self.bars = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), transient=False)
            self.bars.start()
        return self

    def __exit__(self, *exc):
        if self.bars:
            self.bars.stop()

    def __call__(self, item: dict) -> None:
        from deployer import ui

        layer, status = item.get("id"), item.get("status", "")
        if not layer or not status or layer == self.target.rpartition(":")[2]:
            return
        detail = item.get("progressDetail") or {}
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


def _docker():
    from deployer.docker_client import Docker

    return Docker()


def _ensure_built(s, docker, network):
    from deployer import image, ui
    from deployer.docker_client import BuildFailed, DockerError

    try:
        plan = image.plan(s)
        for spec in plan.specs():
            ui.say(f"image {spec.ref}")
        built = image.ensure_image(s, docker, network=network, progress=build_log, prompt=image.tty_prompt(),
                                   image_plan=plan)
    except image.ImageError as exc:
        raise fail(str(exc)) from None
    except BuildFailed as exc:
        raise fail(str(exc)) from None
    except DockerError as exc:
        raise fail(str(exc)) from None
    for ref in built.present:
        ui.say(f"up to date: {ref} exists; not rebuilt")
    for ref in built.built:
        ui.say(f"built: {ref} in {built.seconds[ref]:.1f}s")
    return plan, built


@task(help={"env": ENV_HELP, "network": NETWORK_HELP})
def build_image(c, env=None, network=None):
    """Build the app image (and its base) unless an image with the same content-hash tag exists.

    The tag is a hash of every build input: the Dockerfiles, sifu/, the rendered supervisord and
    Jupyter configs, constraints.txt and Sifu's dependency list, and the build args. A re-run with
    no input changed builds nothing. With sifu.source git, Sifu is cloned from the private repository
    with the deployment token ($DEPLOYMENT_TOKEN or .deployment_token, mode 0600) as a BuildKit secret.
    Uses the Docker engine from DOCKER_HOST (default: the local socket).
    """
    from deployer import ui

    loaded = load_config(env)
    docker = _docker()
    if not docker.reachable():
        raise fail(f"no Docker engine answers at {docker.base_url}; start dockerd or set DOCKER_HOST")
    plan, built = _ensure_built(loaded.settings, docker, network)
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
    from deployer.docker_client import Auth, DockerError

    if not registry:
        raise fail("say where to push: --registry HOST[:PORT][/PATH] (ECR pushes are part of `inv deploy`)")
    loaded = load_config(env)
    s = loaded.settings
    docker = _docker()
    if not docker.reachable():
        raise fail(f"no Docker engine answers at {docker.base_url}; start dockerd or set DOCKER_HOST")
    password = None
    if username:
        password = os.environ.get(PASSWORD_ENV)
        if password is None and is_tty():
            password = getpass.getpass(f"Password for {username} at {registry}: ")
        if not password:
            raise fail(f"--username {username} needs a password: set {PASSWORD_ENV} (or run on a terminal to be asked)")
        ui.register_secret(password)
    try:
        final = image.plan(s).final
        target = image.target_ref(final.ref, registry, s.ecr.repository)
        auth = Auth(registry.split("/", 1)[0], username, password) if username else None
        if auth:
            docker.login(auth)
        if docker.registry_has(target, auth):
            ui.say(f"registry already has {target}; nothing to build or push")
            return
        plan, _ = _ensure_built(s, docker, network)
        with PushProgress(target) as progress:
            result = image.push(docker, plan.final.ref, registry, username, password, progress_cb=progress,
                                repository=s.ecr.repository)
    except image.ImageError as exc:
        raise fail(str(exc)) from None
    except DockerError as exc:
        raise fail(str(exc)) from None
    if result.skipped:
        ui.say(f"registry already has {result.target}; nothing pushed")
    else:
        ui.say(f"pushed {result.target} ({result.digest})")


ns = Collection(build_image, push_image)
