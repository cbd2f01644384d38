"""The one wrapper around the docker SDK (and, for builds with a secret, the docker CLI).

Everything that talks to a Docker engine goes through `Docker`: it negotiates the API version
(this project's engines range from 20.10 / API 1.41 upwards: never pin one), retries idempotent
reads, logs what it does, and turns the SDK's quiet failures into exceptions. In particular a push
or a build can fail with an `error` item in its stream while raising nothing: every item is checked.

The docker SDK cannot pass BuildKit secrets, so a build that needs one runs the docker CLI with
DOCKER_BUILDKIT=1 (Debian's docker.io CLI does it; a CLI whose `build` lacks `--secret` cannot).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

log = logging.getLogger("deployer.docker")

ProgressCallback = Callable[[dict[str, Any]], None]

# Debian's CLI first: /usr/local/bin/docker on our machines is a newer CLI without buildx.
CLI_CANDIDATES = ("/usr/bin/docker", "docker")


class DockerError(Exception):
    """The engine refused or failed; the message says what happened and how to fix it."""


class EngineUnreachable(DockerError):
    pass


class BuildFailed(DockerError):
    def __init__(self, message: str, log_lines: list[str]):
        super().__init__(message)
        self.log_lines = log_lines


class PushFailed(DockerError):
    pass


class LoginFailed(DockerError):
    pass


@dataclass(frozen=True)
class Auth:
    """Registry credentials, passed explicitly to login and push (never saved to ~/.docker)."""

    registry: str
    username: str
    password: str

    def __repr__(self) -> str:  # the password must not reach logs or tracebacks
        return f"Auth(registry={self.registry!r}, username={self.username!r}, password='********')"

    def config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password, "serveraddress": self.registry}


def _retry(what: str, call: Callable[[], Any], attempts: int = 3, delay: float = 1.0) -> Any:
    """Retry a read that failed on the connection (engine restarting, socket busy)."""
    import requests

    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            if attempt == attempts:
                raise EngineUnreachable(f"{what}: the Docker engine did not answer ({exc}); is dockerd running and DOCKER_HOST right?") from None
            log.debug("%s failed (%s); retry %d", what, exc, attempt)
            time.sleep(delay * attempt)


class Docker:
    """A Docker engine: images, builds, login, push."""

    def __init__(self, base_url: str | None = None, timeout: int = 900, client=None):
        self._base_url = base_url
        self._timeout = timeout
        self._client = client

    @property
    def client(self):
        if self._client is None:
            import docker

            try:
                if self._base_url:
                    self._client = docker.DockerClient(base_url=self._base_url, version="auto", timeout=self._timeout)
                else:
                    self._client = docker.from_env(version="auto", timeout=self._timeout)
            except docker.errors.DockerException as exc:
                raise EngineUnreachable(
                    f"cannot reach a Docker engine ({exc}); start dockerd or set DOCKER_HOST to its socket"
                ) from None
        return self._client

    @property
    def api(self):
        return self.client.api

    @property
    def base_url(self) -> str:
        return self._base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- reads ---------------------------------------------------------------------------------------

    def ping(self) -> bool:
        return bool(_retry("ping", self.api.ping))

    def reachable(self) -> bool:
        try:
            return self.ping()
        except Exception:
            return False

    def image_exists(self, ref: str) -> bool:
        import docker

        def inspect():
            try:
                self.api.inspect_image(ref)
                return True
            except docker.errors.ImageNotFound:
                return False

        return _retry(f"inspect image {ref}", inspect)

    def image_id(self, ref: str) -> str:
        return _retry(f"inspect image {ref}", lambda: self.api.inspect_image(ref))["Id"]

    def registry_has(self, ref: str, auth: Auth | None) -> bool:
        """Does the registry already hold this tag? Asks the registry through the engine; read only."""
        import docker

        try:
            self.api.inspect_distribution(ref, auth_config=auth.config() if auth else None)
            return True
        except docker.errors.APIError as exc:
            # Missing tag or repository; without credentials the registry says "unauthorized" and the
            # push that follows reports it properly.
            log.debug("registry lookup of %s: %s", ref, exc.explanation or exc)
            return False

    # --- builds --------------------------------------------------------------------------------------

    def build(self, context: Path, tag: str, buildargs: dict[str, str], dockerfile: str = "Dockerfile",
              network: str | None = None, progress: ProgressCallback | None = None, labels: dict[str, str] | None = None) -> str:
        """Build with the SDK (classic builder), streaming progress; raises BuildFailed with the log."""
        lines: list[str] = []
        stream = self.api.build(path=str(context), dockerfile=dockerfile, tag=tag, buildargs=buildargs, rm=True,
                                forcerm=True, pull=False, decode=True, network_mode=network, labels=labels)
        image_id = None
        for item in stream:
            if "stream" in item:
                for line in item["stream"].splitlines():
                    if line.strip():
                        lines.append(line)
                        if progress:
                            progress({"line": line})
            if "aux" in item and "ID" in item["aux"]:
                image_id = item["aux"]["ID"]
            if "error" in item or "errorDetail" in item:
                message = item.get("error") or item["errorDetail"].get("message", "unknown error")
                raise BuildFailed(f"docker build of {tag} failed: {message.strip()}", lines)
        return image_id or self.image_id(tag)

    def build_with_secret(self, context: Path, tag: str, buildargs: dict[str, str], dockerfile: str,
                          secret_id: str, secret_file: Path, network: str | None = None,
                          progress: ProgressCallback | None = None) -> str:
        """Build with BuildKit through the docker CLI, mounting secret_file as secret_id for RUN steps.

        The secret is passed by file path; its value is never on a command line or in the environment.
        """
        cli = buildkit_cli()
        args = [cli, "build", "--progress=plain", "--tag", tag, "--file", str(context / dockerfile),
                "--secret", f"id={secret_id},src={secret_file}"]
        for name, value in sorted(buildargs.items()):
            args += ["--build-arg", f"{name}={value}"]
        if network:
            args += ["--network", network]
        args.append(str(context))
        env = {**os.environ, "DOCKER_BUILDKIT": "1", "DOCKER_HOST": self.base_url}
        log.info("buildkit: %s", " ".join(args))
        lines: list[str] = []
        with subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
            assert process.stdout
            for line in process.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                if progress:
                    progress({"line": line})
        if process.returncode != 0:
            tail = "\n".join(lines[-15:])
            raise BuildFailed(f"docker build of {tag} (BuildKit) failed with exit code {process.returncode}:\n{tail}", lines)
        return self.image_id(tag)

    # --- registry ------------------------------------------------------------------------------------

    def login(self, auth: Auth) -> None:
        """Log in to a registry; a refusal raises LoginFailed with the registry's words."""
        import docker

        try:
            result = self.client.login(username=auth.username, password=auth.password, registry=auth.registry, reauth=True)
        except docker.errors.APIError as exc:
            # A wrong password comes back as a 500 from the engine, with the registry's message inside.
            raise LoginFailed(f"login to {auth.registry} as {auth.username} failed: {exc.explanation or exc}") from None
        status = (result or {}).get("Status", "")
        if status and "Succeeded" not in status:
            raise LoginFailed(f"login to {auth.registry} as {auth.username} failed: {status}")
        log.info("logged in to %s as %s", auth.registry, auth.username)

    def tag(self, source: str, target: str) -> None:
        repository, _, tag = target.rpartition(":")
        if not self.api.tag(source, repository, tag):
            raise DockerError(f"could not tag {source} as {target}")

    def push(self, target: str, auth: Auth | None, progress: ProgressCallback | None = None) -> str:
        """Push target; every stream item is checked, since the SDK reports failures there without raising.

        Returns the pushed digest.
        """
        repository, _, tag = target.rpartition(":")
        stream = self.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth.config() if auth else None)
        return check_push_stream(stream, target, progress)

    def remove_image(self, ref: str) -> None:
        import docker

        try:
            self.api.remove_image(ref, force=True)
        except docker.errors.ImageNotFound:
            pass


def check_push_stream(stream: Iterable[dict[str, Any]], target: str, progress: ProgressCallback | None = None) -> str:
    """Walk a push stream: feed progress, raise PushFailed on the first error item, return the digest."""
    digest = ""
    for item in stream:
        if "error" in item or "errorDetail" in item:
            message = item.get("error") or (item.get("errorDetail") or {}).get("message") or "unknown error"
            raise PushFailed(f"push of {target} failed: {message.strip()}")
        aux = item.get("aux") or {}
        if aux.get("Digest"):
            digest = aux["Digest"]
        if progress:
            progress(item)
    if not digest:
        raise PushFailed(f"push of {target} ended without a digest from the registry; nothing confirms it arrived")
    return digest


def _supports_secrets(cli: str) -> bool:
    try:
        result = subprocess.run([cli, "build", "--help"], capture_output=True, text=True, timeout=30,
                                env={**os.environ, "DOCKER_BUILDKIT": "1"})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--secret" in result.stdout


def buildkit_cli() -> str:
    """A docker CLI whose `build` takes --secret: $SIFU_DOCKER_CLI, Debian's /usr/bin/docker, or docker on PATH."""
    candidates = [os.environ.get("SIFU_DOCKER_CLI", ""), *CLI_CANDIDATES]
    for candidate in candidates:
        path = shutil.which(candidate) if candidate else None
        if path and _supports_secrets(path):
            return path
    raise DockerError(
        "building Sifu from a private repository needs a docker CLI that can pass BuildKit secrets "
        "(`docker build --secret`); install Debian's docker.io (apt-get install docker.io) or Docker with "
        "buildx, or point SIFU_DOCKER_CLI at one"
    )
