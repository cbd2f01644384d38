"""The JupyterHub side of the capacity benches (issue 14, items 2 and 3): a real JupyterHub on loopback.

Installed on first use into a cache directory (not the project's .venv: JupyterHub is not ours to ship):
    CACHE/jupyterhub-venv     python -m venv, then pip install of PINS (the same jupyter_server, notebook,
                              ipykernel, pyzmq and tornado as constraints.txt, so both sides run the same server)
    CACHE/node_modules/.bin/configurable-http-proxy   npm install --prefix CACHE (the hub's default proxy)
CACHE is $SIFU_BENCH_CACHE or /var/cache/sifu-bench. A marker file holds the pins; new pins reinstall.

The hub: DummyAuthenticator with one fixed password (throwaway), SimpleLocalProcessSpawner. That spawner runs
every single-user server as the hub's own user, as our process mode runs every kernel as Sifu's user: the like-for-
like comparison (LocalProcessSpawner would need a system user per student, created on this shared machine, and
its setuid adds nothing to memory or latency). Single-user servers are notebook-only, as ours: the same
extensions switched off by name (JupyterLab, LSP, terminals, the notebook shim). Students reach their servers
through configurable-http-proxy, the hub's front door, as ours go through nginx.

With a DockerSpawnerSide, the hub runs DockerSpawner instead (how JupyterHub users keep students apart): every
single-user server in its own container on the bench's private dockerd, from an image built on our base image (the
same venv: jupyter_server, notebook, ipykernel at constraints.txt's pins) plus jupyterhub, as a user of its own.
That engine has no bridge (tests/support/docker_engine.py), so the containers share the host's network: each server
takes a free port and the hub reaches it on loopback (DockerSpawner's documented override for host networking).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity.proctree import container_processes, descendants, kill_survivors  # noqa: E402
from tests.support.processes import free_port  # noqa: E402
from tests.support.sifu_stack import Proc, spawn, wait_http  # noqa: E402

# Pinned: JupyterHub 6.1.1 (the version the issue measured) and, from constraints.txt, the server and kernel.
PINS = ["jupyterhub==6.1.1", "jupyter_server==2.21.1", "notebook==7.6.5", "ipykernel==7.4.0", "jupyter_client==8.10.0",
        "pyzmq==27.3.0", "tornado==6.6.1", "dockerspawner==14.0.0"]
PROXY_PIN = "configurable-http-proxy@5.3.0"
PASSWORD = "bench-throwaway"  # DummyAuthenticator's one password: loopback only, for this run only

# Notebook-only single-user servers, as jupyter_server_config.py.j2 does for ours (jupyterhub-singleuser adds its
# own extension, jupyterhub.singleuser.extension, which stays on).
SINGLEUSER_EXTENSIONS = {"jupyterlab": False, "jupyter_lsp": False, "jupyter_server_terminals": False, "notebook_shim": False}


def cache_dir() -> Path:
    return Path(os.environ.get("SIFU_BENCH_CACHE", "/var/cache/sifu-bench"))


def ensure_installed(cache: Path | None = None) -> tuple[Path, Path]:
    """The venv's bin directory and the proxy's binary, installed if missing or pinned differently."""
    cache = cache or cache_dir()
    venv, marker = cache / "jupyterhub-venv", cache / "jupyterhub-pins.json"
    proxy = cache / "node_modules" / ".bin" / "configurable-http-proxy"
    wanted = {"pip": PINS, "npm": PROXY_PIN}
    if marker.exists() and json.loads(marker.read_text()) == wanted and proxy.exists() and (venv / "bin" / "jupyterhub").exists():
        return venv / "bin", proxy
    cache.mkdir(parents=True, exist_ok=True)
    print(f"jupyterhub_side: installing {' '.join(PINS)} and {PROXY_PIN} into {cache} (first use)", flush=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PINS], check=True)
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(cache), PROXY_PIN], check=True)
    marker.write_text(json.dumps(wanted))
    return venv / "bin", proxy


SINGLEUSER_UID = 1100  # the DockerSpawner image's user (our base image has 1000 and 1001)
SINGLEUSER_HOME = "/home/student"


def singleuser_config() -> str:
    return f"c.ServerApp.jpserver_extensions.update({SINGLEUSER_EXTENSIONS!r})\n"


# The single-user image for DockerSpawner. HEALTHCHECK NONE: the base's check asks supervisord, which this image
# does not run. The runtime directory moves to /tmp: the base's is Jupyter's user's alone.
SINGLEUSER_DOCKERFILE = """FROM {base}
USER root
RUN pip install --no-cache-dir -c /opt/venv/constraints.txt {hub_pin} \\
    && useradd --create-home --uid {uid} --shell /bin/bash student
COPY jupyter_server_config.py /etc/jupyter/jupyter_server_config.py
ENV JUPYTER_RUNTIME_DIR=/tmp/jupyter-runtime
HEALTHCHECK NONE
USER {uid}:{uid}
WORKDIR {home}
CMD ["jupyterhub-singleuser"]
"""


@dataclass
class DockerSpawnerSide:
    """What the hub needs to run DockerSpawner: the engine's socket URL and the single-user image."""
    docker_url: str
    image: str


def build_singleuser_image(client, base_ref: str, workdir: Path, tag: str = "sifu-bench-singleuser:latest") -> str:
    """The single-user image on top of our base image (built by tests/support/app_image.py), host network."""
    context = workdir / "singleuser-image"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(SINGLEUSER_DOCKERFILE.format(base=base_ref, hub_pin=PINS[0], uid=SINGLEUSER_UID,
                                                                     home=SINGLEUSER_HOME))
    (context / "jupyter_server_config.py").write_text(singleuser_config())
    client.images.build(path=str(context), tag=tag, network_mode="host", rm=True)
    return tag


def local_process_lines(workdir: Path) -> list[str]:
    args = ["--allow-root"] if os.geteuid() == 0 else []
    config_dir = workdir / "singleuser-config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "jupyter_server_config.py").write_text(singleuser_config())
    return [
        "c.JupyterHub.spawner_class = 'simple'",
        f"c.SimpleLocalProcessSpawner.home_dir_template = {str(workdir / 'home' / '{username}')!r}",
        f"c.Spawner.args = {args!r}",
        f"c.Spawner.environment = {{'JUPYTER_CONFIG_DIR': {str(config_dir)!r}}}",
    ]


def docker_spawner_lines(workdir: Path, hub_port: int, docker: DockerSpawnerSide) -> list[str]:
    return [
        "from dockerspawner import DockerSpawner",
        "from jupyterhub.utils import random_port",
        "",
        "class HostNetworkDockerSpawner(DockerSpawner):",
        "    async def start(self):",
        "        self.port = random_port()  # host network: every server needs a port of its own",
        "        return await super().start()",
        "",
        "    async def get_ip_and_port(self):",
        "        return '127.0.0.1', self.port",
        "",
        "c.JupyterHub.spawner_class = HostNetworkDockerSpawner",
        f"c.JupyterHub.hub_connect_url = 'http://127.0.0.1:{hub_port}'",
        f"c.DockerSpawner.client_kwargs = {{'base_url': {docker.docker_url!r}}}",
        f"c.DockerSpawner.image = {docker.image!r}",
        "c.DockerSpawner.pull_policy = 'never'",
        "c.DockerSpawner.network_name = 'host'",
        "c.DockerSpawner.use_internal_ip = True",
        "c.DockerSpawner.remove = True",
        "c.DockerSpawner.ip = '127.0.0.1'",
        f"c.DockerSpawner.volumes = {{{str(workdir / 'home' / '{raw_username}')!r}: {SINGLEUSER_HOME!r}}}",
        f"c.DockerSpawner.notebook_dir = {SINGLEUSER_HOME!r}",
    ]


def hub_config(workdir: Path, port: int, hub_port: int, api_port: int, proxy: Path, spawner_lines: list[str]) -> str:
    return "\n".join([
        f"c.JupyterHub.bind_url = 'http://127.0.0.1:{port}'",
        f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{hub_port}'",
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{api_port}'",
        f"c.ConfigurableHTTPProxy.command = [{str(proxy)!r}]",
        f"c.JupyterHub.db_url = 'sqlite:///{workdir / 'jupyterhub.sqlite'}'",
        f"c.JupyterHub.cookie_secret_file = {str(workdir / 'cookie_secret')!r}",
        f"c.JupyterHub.pid_file = {str(workdir / 'jupyterhub.pid')!r}",
        "c.JupyterHub.cleanup_servers = True",
        "c.JupyterHub.authenticator_class = 'dummy'",
        f"c.DummyAuthenticator.password = {PASSWORD!r}",
        "c.Authenticator.allow_all = True",
        *spawner_lines,
        "c.Spawner.default_url = '/tree'",
        "c.Spawner.start_timeout = 120",
        "c.Spawner.http_timeout = 120",
        "c.JupyterHub.concurrent_spawn_limit = 0",
        "",
    ])


@dataclass
class Hub:
    url: str  # the proxy's public URL: what a student's browser talks to
    proc: Proc
    workdir: Path
    bin_dir: Path = field(repr=False)
    home_uid: int | None = None  # who must own a student's home (DockerSpawner's image user); None: the hub's
    docker_client: object = field(default=None, repr=False)  # DockerSpawner: the engine, to find its containers

    def pids(self) -> list[int]:
        """The hub, its proxy, the single-user servers and their kernels (DockerSpawner: the servers' containers,
        each with its containerd shim)."""
        return descendants([self.proc.popen.pid]) + (container_pids(self.docker_client) if self.docker_client else [])

    def stop(self) -> None:
        started = self.pids()
        self.proc.stop()  # TERM: the hub stops the proxy and, with cleanup_servers, every single-user server
        kill_survivors(started)  # those it could not (a hub stopped while starting leaves its proxy)


def container_pids(client) -> list[int]:
    """The processes of every student's container (DockerSpawner names them jupyter-NAME), each with its shim."""
    return [pid for container in client.containers.list() if container.name.startswith("jupyter-")
            for pid in container_processes(container.attrs["State"]["Pid"])]


def start_hub(workdir: Path, docker: DockerSpawnerSide | None = None, docker_client=None) -> Hub:
    """DockerSpawner when `docker` is given (its containers found through `docker_client`), else local processes."""
    bin_dir, proxy = ensure_installed()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "home").mkdir(exist_ok=True)
    port, hub_port, api_port = free_port(), free_port(), free_port()
    config = workdir / "jupyterhub_config.py"
    spawner = docker_spawner_lines(workdir, hub_port, docker) if docker else local_process_lines(workdir)
    config.write_text(hub_config(workdir, port, hub_port, api_port, proxy, spawner))
    env = {k: os.environ[k] for k in ("LANG", "LC_ALL", "SSL_CERT_FILE", "TMPDIR") if k in os.environ}
    env.update(PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}", HOME=str(workdir),
               CONFIGPROXY_AUTH_TOKEN=secrets.token_hex(16), PYTHONDONTWRITEBYTECODE="1")
    proc = spawn("jupyterhub", [str(bin_dir / "jupyterhub"), "-f", str(config)], env, workdir, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    wait_http(proc, f"{url}/hub/health", timeout=90)
    # The proxy answers 404 until the hub has added its own route: wait for the hub itself behind it.
    if not wait_until(lambda: httpx.get(f"{url}/hub/health", timeout=5).status_code == 200, timeout=60):
        proc.stop()
        raise RuntimeError(f"JupyterHub did not answer behind its proxy:\n{proc.log()}")
    return Hub(url, proc, workdir, bin_dir, SINGLEUSER_UID if docker else None, docker_client)


class HubStudent:
    """One student in a browser-like cookie jar: login form, spawn, the OAuth hop to their server, a session."""

    def __init__(self, hub: Hub, username: str):
        self.hub, self.username = hub, username
        self.http = httpx.Client(base_url=hub.url, timeout=120, follow_redirects=True)
        self.kernel_id = ""

    def close(self) -> None:
        self.http.close()

    def xsrf(self) -> dict[str, str]:
        return {"X-XSRFToken": self.http.cookies.get("_xsrf", path="/hub/") or ""}

    def login(self) -> None:
        """GET the form (sets the hub's _xsrf), POST it; the reply redirects on to spawn (not followed here)."""
        assert self.http.get("/hub/login").status_code == 200
        token = self.http.cookies.get("_xsrf", path="/hub/") or ""
        reply = self.http.post("/hub/login?next=", data={"username": self.username, "password": PASSWORD, "_xsrf": token},
                               follow_redirects=False)
        assert reply.status_code == 302, (reply.status_code, reply.text[:300])

    def spawn(self, timeout: float = 180) -> None:
        """Start the server the way the hub's pages do (POST .../server, then its progress stream until ready)."""
        api = f"/hub/api/users/{self.username}"
        reply = self.http.post(f"{api}/server", headers=self.xsrf())
        if reply.status_code == 400 and "already running" in reply.text:
            return
        assert reply.status_code in (201, 202), (reply.status_code, reply.text[:300])
        if reply.status_code == 202:
            with self.http.stream("GET", f"{api}/server/progress", headers=self.xsrf(), timeout=timeout) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:") and json.loads(line[5:]).get("ready"):
                        break

    def open_notebook(self, notebook: str) -> None:
        """The notebook page on the student's server: the hub's OAuth hop sets the server's cookie and _xsrf."""
        reply = self.http.get(f"/user/{self.username}/notebooks/{notebook}")
        assert reply.status_code == 200, (reply.status_code, str(reply.url), reply.text[:300])

    def place_notebook(self, notebook: str, text: str) -> None:
        """Put the notebook in the student's home on disk, before their server starts (not timed: JupyterHub
        has no step of its own for it, so its side is spared the copy that ours times)."""
        home = self.hub.workdir / "home" / self.username
        home.mkdir(parents=True, exist_ok=True)
        (home / notebook).write_text(text)
        if self.hub.home_uid is not None:
            for path in (home, home / notebook):
                os.chown(path, self.hub.home_uid, self.hub.home_uid)

    def origin(self) -> str:
        return self.hub.url

    def server_xsrf(self) -> dict[str, str]:
        return {"X-XSRFToken": self.http.cookies.get("_xsrf", path=f"/user/{self.username}/") or ""}

    def start_session(self, notebook: str) -> str:
        reply = self.http.post(f"/user/{self.username}/api/sessions", headers=self.server_xsrf(), json={
            "path": notebook, "name": notebook, "type": "notebook", "kernel": {"name": "python3"}})
        assert reply.status_code == 201, (reply.status_code, reply.text[:300])
        self.kernel_id = reply.json()["kernel"]["id"]
        return self.kernel_id

    def websocket_url(self) -> str:
        return f"{self.hub.url.replace('http://', 'ws://')}/user/{self.username}/api/kernels/{self.kernel_id}/channels"

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)


def wait_until(check, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False
