"""The app image built for real from the local Debian base, and containers run from it.

`app_image` builds base-image/Dockerfile and Dockerfile once per session through deployer/image.py
(the same code `inv build-image` runs), on free ports picked for this session, since containers
use the host network (see docker_engine.py). `run_app` starts a container as Elastic Beanstalk
would: the container environment from deployer/render.py plus the secrets, the notebook root
bind-mounted from a host directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.base_image import IMAGE as LOCAL_BASE
from tests.support.processes import free_port

CONTAINER_UID = 1000  # the image's non-root user (base-image/Dockerfile)


def image_environ(sifu_port: int, jupyter_port: int, **extra: str) -> dict[str, str]:
    """Config environment for builds from the local base on the given ports."""
    return {
        "DEPLOY__IMAGE__BASE_IMAGE": LOCAL_BASE,
        "DEPLOY__PORTS__SIFU": str(sifu_port),
        "DEPLOY__PORTS__JUPYTER": str(jupyter_port),
        "EDX_HOSTNAME": "lms.example.test",
        "EDX_OAUTH2_CLIENT_ID": "sifu-image-test",
        "EDX_OAUTH2_CLIENT_REDIRECT_URI": "https://lms.example.test/xblock/callback",
        **extra,
    }


def load_settings(environ: dict[str, str]):
    from deployer.config import load

    return load(environ=environ, overrides_file=None, answers_file=Path("/nonexistent/answers.yml")).settings


@dataclass
class AppImage:
    ref: str
    settings: object = field(repr=False)
    environ: dict[str, str] = field(repr=False)
    plan: object = field(repr=False)
    build_seconds: dict[str, float]

    @property
    def sifu_port(self) -> int:
        return self.settings.ports.sifu

    @property
    def jupyter_port(self) -> int:
        return self.settings.ports.jupyter


@pytest.fixture(scope="session")
def app_image(docker_engine, localbase_image) -> AppImage:
    """Base + final image built for real (host network) on this session's free ports."""
    from deployer import image
    from deployer.docker_client import Docker

    environ = image_environ(free_port(), free_port())
    settings = load_settings(environ)
    plan = image.plan(settings)
    docker = Docker(docker_engine.base_url)
    result = image.ensure_image(settings, docker, network="host")
    docker.close()
    return AppImage(ref=result.ref, settings=settings, environ=environ, plan=plan, build_seconds=result.seconds)


@dataclass
class BenchSetup:
    """What bench/*.py get from built_app_image: a scratch directory, the engine's clients and the built image."""
    work: Path
    engine: object = field(repr=False)  # sandbox.docker_engine.DockerEngine
    client: object = field(repr=False)  # the engine's Docker SDK client
    docker: object = field(repr=False)  # deployer.docker_client.Docker on the same engine
    built: AppImage
    result: object = field(repr=False)  # deployer.image.ensure_image's result (what it built, in how long)


@contextmanager
def built_app_image(work_parent: str = "/tmp", timings: dict | None = None) -> Iterator[BenchSetup]:
    """For the benchmarks that need the real image outside pytest (bench/image_start.py, e2e_proxy.py,
    kernel_broker_start.py): a private dockerd, the cached debootstrap base imported, the app image built on free
    ports; all stopped and removed after. `timings`, when given, gets the seconds of each step."""
    from deployer import image
    from deployer.docker_client import Docker
    from tests.support import base_image, docker_engine

    timings = {} if timings is None else timings
    # Short (containerd's socket path lives under it) and named by SIFU_TEST_DOCKER_PREFIX, as test engines are.
    work = Path(tempfile.mkdtemp(prefix=f"{os.environ.get('SIFU_TEST_DOCKER_PREFIX', 'sifu-dk-')}bench-", dir=work_parent))
    started = time.monotonic()
    base_image.rootfs_tarball()
    timings["rootfs"] = time.monotonic() - started
    engine = docker_engine.start_engine(work / "engine")
    try:
        client = engine.client()
        started = time.monotonic()
        base_image.import_base(client)
        timings["import"] = time.monotonic() - started
        environ = image_environ(free_port(), free_port())
        settings = load_settings(environ)
        docker = Docker(engine.base_url)
        plan = image.plan(settings)
        result = image.ensure_image(settings, docker, network="host")
        # result.ref, not a plan made after the build: a file changed meanwhile would name an image never built
        built = AppImage(ref=result.ref, settings=settings, environ=environ, plan=plan, build_seconds=result.seconds)
        try:
            yield BenchSetup(work, engine, client, docker, built, result)
        finally:
            docker.close()
            client.close()
    finally:
        docker_engine.stop_engine(engine)
        shutil.rmtree(work, ignore_errors=True)


def container_environment(settings) -> dict[str, str]:
    """What Elastic Beanstalk gives the container: render's environment plus the secrets (from SSM there)."""
    from deployer import render

    env = render.container_environment(settings, render.Facts())
    env["SIFU_SECRET_KEY"] = secrets.token_urlsafe(32)
    env["EDX_OAUTH2_CLIENT_SECRET"] = secrets.token_urlsafe(16)
    return env


def prepare_notebook_root(path: Path) -> Path:
    """A host directory standing in for the EFS mount point, owned by the container's user."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, CONTAINER_UID, CONTAINER_UID)
    return path


def run_app(client, app: AppImage, notebooks: Path, name: str | None = None, command: list[str] | None = None,
            as_local_run: bool = False):
    """Start the app container detached (host network, notebook root bind-mounted); `command` replaces CMD.
    As Elastic Beanstalk starts it (Docker's default capabilities, no limits: converge's docker update adds those),
    or `as_local_run`: with the capabilities, no-new-privileges and limits that local runs and the e2e stack give."""
    from deployer import localrun

    confinement = localrun.container_confinement(app.settings, localrun.machine_memory_mib()) if as_local_run else {}
    return client.containers.run(
        app.ref,
        command=command,
        detach=True,
        name=name,
        network_mode="host",
        environment=container_environment(app.settings),
        volumes={str(notebooks): {"bind": "/notebooks", "mode": "rw"}},
        **confinement,
    )


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def service_urls(app: AppImage) -> dict[str, str]:
    return {
        "sifu": f"http://127.0.0.1:{app.sifu_port}/health",
        "jupyter": f"http://127.0.0.1:{app.jupyter_port}/api",
    }


# How often wait_ready tries the services, and how often it asks the engine whether the container exited: the
# readiness times (bench/image_start.py) are only as fine as the first, and a Docker API call costs more than a try.
POLL_SECONDS = 0.02
EXIT_CHECK_SECONDS = 0.5


def wait_ready(app: AppImage, container=None, timeout: float = 60.0) -> dict[str, float]:
    """Poll both services until they answer 200; returns seconds from now until each was ready."""
    started = time.monotonic()
    checked = started
    ready: dict[str, float] = {}
    urls = service_urls(app)
    while time.monotonic() - started < timeout:
        for name, url in urls.items():
            if name not in ready and http_status(url, timeout=1.0) == 200:
                ready[name] = time.monotonic() - started
        if len(ready) == len(urls):
            return ready
        if container is not None and time.monotonic() - checked >= EXIT_CHECK_SECONDS:
            checked = time.monotonic()
            container.reload()
            if container.status == "exited":
                raise AssertionError(f"container exited:\n{container.logs().decode(errors='replace')[-3000:]}")
        time.sleep(POLL_SECONDS)
    logs = container.logs().decode(errors="replace")[-3000:] if container is not None else ""
    raise AssertionError(f"not ready within {timeout:.0f}s (ready: {ready}):\n{logs}")
