"""The image: seed steps 5 (Docker login), 10-11 (deployment token), 6 (build) and 7 (push).

They read the registry login and repository URI that the registry steps (2-4) learned, so any registry
works the same way. Each check is read only; "already there" (logged in, image in the registry) is success.
The image URI they learn is what step 13 renders into Dockerrun.aws.json.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import SecretStr

from deployer import image
from deployer.checklist.context import Context
from deployer.docker_client import Auth, Docker, DockerError
from deployer.steps import Action, Check, ReadOnly, StepError


def _docker(ctx: Context) -> Docker:
    if ctx.docker is None:
        try:
            ctx.docker = image.engine()
        except image.ImageError as exc:
            raise StepError(str(exc)) from None
    return ctx.docker


def _needs_token(ctx: Context) -> bool:
    return ctx.settings.sifu.source == "git"


def _plan(ctx: Context) -> image.ImagePlan:
    if ctx.facts.image_plan is None:
        try:
            plan = image.plan(ctx.settings)
        except image.ImageError as exc:
            raise StepError(str(exc)) from None
        ctx.facts.image_plan = plan
        ctx.facts.image_ref = plan.final.ref
        if ctx.facts.repository_uri:
            ctx.facts.image_uri = f"{ctx.facts.repository_uri}:{plan.final.tag}"
    return ctx.facts.image_plan


def _in_registry(ctx: Context) -> bool:
    uri = ctx.facts.image_uri
    if not uri or ctx.facts.registry_auth is None:
        return False
    return _docker(ctx).registry_has(uri, ctx.facts.registry_auth)


@dataclass
class DockerLogin(ReadOnly):
    """Seed step 5: log in to the registry with the docker SDK; a refused login fails the step."""

    number: int = 5
    name: str = "Docker login"

    def check(self, ctx: Context) -> Check:
        login = ctx.facts.registry_login
        if login is None:
            return Check("pending", "needs the registry login details (step 4)")
        auth = Auth(login.registry, login.username, login.password)
        try:
            _docker(ctx).login(auth)  # verifies the credentials; changes nothing in the registry
        except DockerError as exc:
            raise StepError(str(exc)) from None
        ctx.facts.registry_auth = auth
        return Check.ok(f"logged in to {login.registry} as {login.username}")


@dataclass
class DeploymentToken(ReadOnly):
    """Seed step 10: the deployment token, from DEPLOYMENT_TOKEN or .deployment_token (0600), if needed."""

    number: int = 10
    name: str = "Deployment token"

    def check(self, ctx: Context) -> Check:
        if not _needs_token(ctx):
            return Check.ok("not needed: Sifu comes from this repository (sifu.source local)")
        try:
            token = image.deployment_token(ctx.settings)
        except image.TokenError as exc:
            if ctx.interactive and not image.token_path(ctx.settings).exists():
                return Check.ok("not set yet; step 11 asks for it")
            raise StepError(str(exc)) from None
        ctx.facts.deployment_token = SecretStr(token)
        source = image.TOKEN_ENV if os.environ.get(image.TOKEN_ENV, "").strip() else image.token_path(ctx.settings).name
        return Check.ok(f"from {source} (used only as a BuildKit secret)")


@dataclass
class AskToken:
    """Seed step 11: ask for the token on a terminal when a private source needs it, and save it (0600)."""

    number: int = 11
    name: str = "Ask for the token when needed"

    def check(self, ctx: Context) -> Check:
        if not _needs_token(ctx) or ctx.facts.deployment_token is not None:
            return Check.ok("nothing to ask")
        return Check.change("the private Sifu source needs the deployment token",
                            Action("ask", "deployment token", f"saved to {image.token_path(ctx.settings).name}, mode 0600"))

    def apply(self, ctx: Context, check: Check) -> str | None:
        prompt = image.tty_prompt()
        if prompt is None:
            raise StepError(f"no terminal to ask on: set {image.TOKEN_ENV} or write {image.token_path(ctx.settings)} (chmod 600)")
        try:
            token = image.deployment_token(ctx.settings, prompt=prompt)
        except image.TokenError as exc:
            raise StepError(str(exc)) from None
        ctx.facts.deployment_token = SecretStr(token)
        return f"saved to {image.token_path(ctx.settings).name} (mode 0600)"


@dataclass
class BuildImage:
    """Seed step 6: build the image only when its content-hash tag is neither local nor in the registry."""

    number: int = 6
    name: str = "Build the image if out of date"
    network: str | None = None

    def check(self, ctx: Context) -> Check:
        plan = _plan(ctx)
        if _in_registry(ctx):
            return Check.ok(f"registry has {ctx.facts.image_uri}; no build needed")
        docker = _docker(ctx)
        missing = [spec.ref for spec in plan.specs() if not docker.image_exists(spec.ref)]
        if plan.final.ref not in missing:
            return Check.ok(f"{plan.final.ref} is built")
        return Check.change(f"{plan.final.ref} is out of date", *[Action("build", ref) for ref in missing])

    def apply(self, ctx: Context, check: Check) -> str | None:
        token = ctx.facts.deployment_token
        environ = {image.TOKEN_ENV: token.get_secret_value()} if token else {}

        def progress(item: dict) -> None:
            ctx.emit(f"      {item['image'].split(':')[0]} | {item['line']}")

        try:
            network = self.network or ctx.settings.image.build_network or None
            result = image.ensure_image(ctx.settings, _docker(ctx), network=network, progress=progress,
                                        image_plan=_plan(ctx), environ=environ)
        except (image.ImageError, DockerError) as exc:
            raise StepError(str(exc)) from None
        return ", ".join(f"built {ref} in {result.seconds[ref]:.0f}s" for ref in result.built) or "nothing to build"


@dataclass
class PushImage:
    """Seed step 7: push with progress, checking every stream item; skipped when the registry has the tag."""

    number: int = 7
    name: str = "Push the image"

    def check(self, ctx: Context) -> Check:
        _plan(ctx)
        uri = ctx.facts.image_uri
        if not uri:
            return Check("pending", "needs the repository (steps 2-3)")
        if _in_registry(ctx):
            return Check.ok(f"registry has {uri}")
        return Check.change(f"{uri} is not in the registry", Action("push", uri))

    def apply(self, ctx: Context, check: Check) -> str | None:
        auth = ctx.facts.registry_auth
        if auth is None:
            raise StepError("not logged in to the registry (step 5 did not run)")
        states: dict[str, str] = {}

        def progress(item: dict) -> None:
            layer, status = item.get("id"), item.get("status", "")
            if layer and status and states.get(layer) != status:
                states[layer] = status
                ctx.emit(f"      layer {layer}: {status}")

        repository_uri = ctx.facts.repository_uri
        registry, _, repository = repository_uri.partition("/")
        try:
            result = image.push(_docker(ctx), ctx.facts.image_ref, registry, auth.username, auth.password,
                                progress_cb=progress, repository=repository)
        except DockerError as exc:
            raise StepError(str(exc)) from None
        ctx.counters.bytes_pushed += result.bytes_pushed
        if result.skipped:
            return "already in the registry"
        return f"pushed {result.target} ({result.digest}, {result.bytes_pushed} bytes)"
