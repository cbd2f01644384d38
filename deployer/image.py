"""The images: content-hash tags, staged build contexts, builds that skip what exists, pushes.

Three images, each tagged by a hash of exactly what its build sees (files + build args):
  <image.name>-base    base-image/Dockerfile: Python, Jupyter, supervisord, dumb-init, user
  <image.name>-source  sifu-source.Dockerfile: Sifu cloned from a private repository (sifu.source git only)
  <image.name>         Dockerfile: the base + Sifu + the rendered image configs (what Elastic Beanstalk runs)

The final image's build args name the base (and source) by their hash tags, so any change below
changes the final tag too. A build context is staged in a temporary directory from those same
files, so what is hashed is what is sent to the engine.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import stat
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from deployer import REPO_ROOT, ui
from deployer.config import Settings
from deployer.docker_client import Auth, Docker, ProgressCallback
from deployer.render import render_all

BASE_DOCKERFILE = "base-image/Dockerfile"
FINAL_DOCKERFILE = "Dockerfile"
SOURCE_DOCKERFILE = "sifu-source.Dockerfile"
SIFU_PACKAGE = "sifu"
TOKEN_ENV = "DEPLOYMENT_TOKEN"
SECRET_ID = "deployment_token"
TAG_LENGTH = 16
# Never sent to the engine: caches and editor litter are not build inputs.
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


class ImageError(Exception):
    """A build input or credential is missing or wrong; the message says how to fix it."""


class TokenError(ImageError):
    pass


@dataclass(frozen=True)
class BuildSpec:
    """One image build: the staged context (relative path -> bytes), build args, and whether it needs the token."""

    name: str
    files: dict[str, bytes] = field(repr=False)
    buildargs: dict[str, str]
    dockerfile: str = "Dockerfile"
    needs_token: bool = False
    directories: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.files):
            digest.update(b"F\0" + path.encode() + b"\0" + hashlib.sha256(self.files[path]).digest())
        for path in sorted(self.directories):
            digest.update(b"D\0" + path.encode() + b"\0")
        for key in sorted(self.buildargs):
            digest.update(b"A\0" + key.encode() + b"\0" + self.buildargs[key].encode() + b"\0")
        digest.update(b"dockerfile\0" + self.dockerfile.encode())
        return digest.hexdigest()[:TAG_LENGTH]

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    def stage(self, directory: Path) -> Path:
        """Write the context into directory (which must be empty); returns it."""
        for sub in self.directories:
            (directory / sub).mkdir(parents=True, exist_ok=True)
        for path, content in self.files.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return directory


@dataclass(frozen=True)
class ImagePlan:
    base: BuildSpec
    final: BuildSpec
    source: BuildSpec | None = None

    def specs(self) -> list[BuildSpec]:
        return [spec for spec in (self.base, self.source, self.final) if spec is not None]


# --- what goes into each build ---------------------------------------------------------------------------


def _read(relative: str, root: Path) -> bytes:
    path = root / relative
    if not path.is_file():
        raise ImageError(f"build input {relative} is missing from {root}; restore it (git checkout -- {relative})")
    return path.read_bytes()


def _package_files(root: Path, package: str) -> dict[str, bytes]:
    base = root / package
    if not (base / "__init__.py").is_file():
        raise ImageError(
            f"{package}/ (Sifu's code) is missing or has no __init__.py under {root}; the image needs it "
            "(or set sifu.source: git with sifu.git_url to build from a private repository)"
        )
    files = {}
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or _IGNORED_PARTS & set(relative.parts) or path.name.endswith(_IGNORED_SUFFIXES):
            continue
        files[relative.as_posix()] = path.read_bytes()
    return files


def sifu_requirements(root: Path = REPO_ROOT) -> bytes:
    """Sifu's runtime dependencies: pyproject.toml's `sifu` extra, one per line (pins come from constraints.txt)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extra = project.get("optional-dependencies", {}).get("sifu")
    if not extra:
        raise ImageError("pyproject.toml has no [project.optional-dependencies] sifu list; the image needs it")
    header = "# Generated from pyproject.toml's `sifu` extra by deployer/image.py; pinned by constraints.txt.\n"
    return (header + "\n".join(extra) + "\n").encode()


def base_spec(s: Settings, root: Path = REPO_ROOT) -> BuildSpec:
    return BuildSpec(
        name=f"{s.image.name}-base",
        files={"Dockerfile": _read(BASE_DOCKERFILE, root), "constraints.txt": _read("constraints.txt", root)},
        buildargs={"BASE_IMAGE": s.image.base_image},
    )


def source_spec(s: Settings, root: Path = REPO_ROOT) -> BuildSpec:
    return BuildSpec(
        name=f"{s.image.name}-source",
        files={"Dockerfile": _read(SOURCE_DOCKERFILE, root)},
        buildargs={"BASE_IMAGE": s.image.base_image, "SIFU_GIT_URL": s.sifu.git_url, "SIFU_GIT_REF": s.sifu.git_ref},
        needs_token=True,
    )


def image_files(s: Settings) -> dict[str, bytes]:
    """The rendered image configs (supervisord.conf, jupyter_server_config.py), validated."""
    tree = render_all(s)
    return {f"image/{path}": rendered.content.encode() for path, rendered in sorted(tree.under("image/").items())}


def plan(s: Settings, root: Path = REPO_ROOT, rendered: dict[str, bytes] | None = None) -> ImagePlan:
    """Every image this config needs, with its tag; reads files only (no engine, no token)."""
    base = base_spec(s, root)
    source = source_spec(s, root) if s.sifu.source == "git" else None
    files = {"Dockerfile": _read(FINAL_DOCKERFILE, root), "requirements-sifu.txt": sifu_requirements(root)}
    files.update(rendered if rendered is not None else image_files(s))
    directories: tuple[str, ...] = ()
    if source is None:
        files.update(_package_files(root, SIFU_PACKAGE))
    else:
        directories = (SIFU_PACKAGE,)  # the unused "repository" stage copies an empty sifu/
    final = BuildSpec(
        name=s.image.name,
        files=files,
        buildargs={
            "BASE_IMAGE": base.ref,
            "SIFU_SOURCE": source.ref if source else "repository",
            "SIFU_PORT": str(s.ports.sifu),
            "JUPYTER_PORT": str(s.ports.jupyter),
        },
        directories=directories,
    )
    return ImagePlan(base=base, final=final, source=source)


# --- the deployment token ------------------------------------------------------------------------------------


def token_path(s: Settings, root: Path = REPO_ROOT) -> Path:
    return root / s.deployment_token.file


def deployment_token(s: Settings, environ: dict[str, str] | None = None, root: Path = REPO_ROOT,
                     prompt: Callable[[str], str] | None = None) -> str:
    """The token for the private Sifu repository: $DEPLOYMENT_TOKEN, else the token file (mode 0600).

    With a prompt (interactive runs only) a missing token is asked for and saved to the file, 0600.
    """
    environ = os.environ if environ is None else environ
    path = token_path(s, root)
    if environ.get(TOKEN_ENV, "").strip():
        token = environ[TOKEN_ENV].strip()
    elif path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise TokenError(
                f"{path} has mode {mode:04o}, so other users can read the deployment token; "
                f"run `chmod 600 {path}` and try again"
            )
        token = path.read_text().strip()
        if not token:
            raise TokenError(f"{path} is empty; put the deployment token in it (one line, chmod 600) or set {TOKEN_ENV}")
    elif prompt is not None:
        token = prompt(f"Deployment token for {s.sifu.git_url} (saved to {path}, mode 0600): ").strip()
        if not token:
            raise TokenError(f"no deployment token given; set {TOKEN_ENV} or put it in {path} (chmod 600)")
        save_token(path, token)
    else:
        raise TokenError(
            f"sifu.source is git, so building the image needs the deployment token to clone {s.sifu.git_url}; "
            f"set {TOKEN_ENV}, or put the token in {path} (one line, chmod 600; the file is git-ignored)"
        )
    if any(ord(ch) < 32 for ch in token):
        raise TokenError("the deployment token contains a control character (a newline inside it?); fix the value")
    ui.register_secret(token)
    return token


def save_token(path: Path, token: str) -> None:
    """Write the token file owner-only from the first byte (never briefly world-readable)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def tty_prompt() -> Callable[[str], str] | None:
    """getpass when a person is at the terminal; None in CI and pipes (then a missing token is an error)."""
    return getpass.getpass if sys.stdin.isatty() and sys.stdout.isatty() else None


# --- build ------------------------------------------------------------------------------------------------------


@dataclass
class BuildResult:
    ref: str
    built: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.built)


def build_spec(docker: Docker, spec: BuildSpec, network: str | None = None, progress: ProgressCallback | None = None,
               token: str | None = None) -> float:
    """Build one image from its staged context; returns the seconds it took."""
    started = time.monotonic()
    if progress is not None:
        report = progress

        def progress(item: dict) -> None:
            report({**item, "image": spec.ref})

    with tempfile.TemporaryDirectory(prefix="sifu-build-") as tmp:
        context = spec.stage(Path(tmp) / "context")
        labels = {"org.opencontainers.image.title": spec.name, "sifu.build-inputs": spec.tag}
        if spec.needs_token:
            if not token:
                raise TokenError(f"{spec.ref} needs the deployment token and none was given")
            secret = Path(tmp) / "secret"
            secret.mkdir(mode=0o700)
            token_file = secret / SECRET_ID
            save_token(token_file, token)
            docker.build_with_secret(context, spec.ref, spec.buildargs, spec.dockerfile, SECRET_ID, token_file,
                                     network=network, progress=progress)
        else:
            docker.build(context, spec.ref, spec.buildargs, spec.dockerfile, network=network, progress=progress, labels=labels)
    return time.monotonic() - started


def ensure_image(s: Settings, docker: Docker, network: str | None = None, progress: ProgressCallback | None = None,
                 prompt: Callable[[str], str] | None = None, image_plan: ImagePlan | None = None,
                 environ: dict[str, str] | None = None, root: Path = REPO_ROOT) -> BuildResult:
    """Build whatever images are missing locally, in order; an existing tag is success (no build)."""
    image_plan = image_plan or plan(s, root)
    result = BuildResult(ref=image_plan.final.ref)
    if docker.image_exists(image_plan.final.ref):
        result.present.append(image_plan.final.ref)
        return result
    missing = []
    for spec in image_plan.specs():
        if docker.image_exists(spec.ref):
            result.present.append(spec.ref)
        else:
            missing.append(spec)
    # Ask for the token before building anything, so a missing token fails fast.
    token = deployment_token(s, environ=environ, root=root, prompt=prompt) if any(m.needs_token for m in missing) else None
    for spec in missing:
        result.seconds[spec.ref] = build_spec(docker, spec, network=network, progress=progress,
                                              token=token if spec.needs_token else None)
        result.built.append(spec.ref)
    return result


# --- push -----------------------------------------------------------------------------------------------------


@dataclass
class PushResult:
    target: str
    skipped: bool
    digest: str = ""
    bytes_pushed: int = 0  # of the layers this push sent (not those the registry had)


def target_ref(image: str, registry: str, repository: str | None = None) -> str:
    """registry[/prefix] + repository:tag, e.g. 123.dkr.ecr.us-east-1.amazonaws.com/sifu-notebooks:<hash>."""
    name, _, tag = image.rpartition(":")
    return f"{registry.rstrip('/')}/{repository or name}:{tag}"


def push(docker: Docker, image: str, registry: str, username: str | None, password: str | None,
         progress_cb: ProgressCallback | None = None, repository: str | None = None) -> PushResult:
    """Push a local image to registry, logging in first when credentials are given.

    Skips the push when the registry already has that tag (tags are content hashes). Without
    credentials the engine pushes anonymously and the registry's refusal is raised as PushFailed.
    Any registry works; ECR's credentials come from `get_authorization_token` in the deploy steps.
    """
    target = target_ref(image, registry, repository)
    host = registry.split("/", 1)[0]
    auth = Auth(host, username, password or "") if username else None
    if auth:
        ui.register_secret(auth.password)
        docker.login(auth)
    if docker.registry_has(target, auth):
        return PushResult(target=target, skipped=True)
    sizes: dict[str, int] = {}
    states: dict[str, str] = {}

    def tally(item: dict) -> None:
        layer, status = item.get("id"), item.get("status", "")
        total = (item.get("progressDetail") or {}).get("total")
        if layer and total:
            sizes[layer] = total
        if layer and status:
            states[layer] = status
        if progress_cb is not None:
            progress_cb(item)

    docker.tag(image, target)
    digest = docker.push(target, auth, progress=tally)
    pushed = sum(size for layer, size in sizes.items() if states.get(layer) == "Pushed")
    return PushResult(target=target, skipped=False, digest=digest, bytes_pushed=pushed)


# --- the tasks' flows -----------------------------------------------------------------------------------------


def engine() -> Docker:
    """The Docker engine from DOCKER_HOST (default: the local socket), if it answers."""
    docker = Docker()
    if not docker.reachable():
        raise ImageError(f"no Docker engine answers at {docker.base_url}; start dockerd or set DOCKER_HOST")
    return docker


def build(s: Settings, network: str | None = None, progress: ProgressCallback | None = None,
          prompt: Callable[[str], str] | None = None, image_plan: ImagePlan | None = None) -> BuildResult:
    """ensure_image on the engine from DOCKER_HOST."""
    return ensure_image(s, engine(), network=network, progress=progress, prompt=prompt, image_plan=image_plan)


@dataclass
class Published:
    target: str
    built: BuildResult | None  # None when the registry already had the tag
    pushed: PushResult | None


def publish(s: Settings, registry: str, username: str | None, password: str | None, network: str | None = None,
            build_progress: ProgressCallback | None = None, push_progress: ProgressCallback | None = None,
            prompt: Callable[[str], str] | None = None, image_plan: ImagePlan | None = None,
            on_build: Callable[[ImagePlan], None] | None = None) -> Published:
    """Build the image if out of date and push it to ``registry``, unless the registry already has its tag.
    The deploy does the same in its steps 5 (login), 6 (build) and 7 (push)."""
    docker = engine()
    image_plan = image_plan or plan(s)
    target = target_ref(image_plan.final.ref, registry, s.ecr.repository)
    auth = Auth(registry.split("/", 1)[0], username, password or "") if username else None
    if auth:
        docker.login(auth)
    if docker.registry_has(target, auth):
        return Published(target, None, None)
    if on_build is not None:
        on_build(image_plan)
    built = ensure_image(s, docker, network=network, progress=build_progress, prompt=prompt, image_plan=image_plan)
    pushed = push(docker, image_plan.final.ref, registry, username, password, progress_cb=push_progress,
                  repository=s.ecr.repository)
    return Published(target, built, pushed)
