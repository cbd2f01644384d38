"""`inv local-run`: the whole stack on one machine, as it runs on an instance.

    browser -> nginx (rendered vhosts, public ports) -> Sifu + Jupyter (supervisord) -> a local "EFS" folder
            -> devlms (development LMS and OAuth2 provider)

Two modes, one topology:
  container  the app image (built for the internal ports), host network, the folder bind-mounted
             at /notebooks: what Elastic Beanstalk runs;
  process    the same supervisord programs, rendered from the same templates, run from this venv.
With nginx installed, it listens on the configured ports and the app on ports + offset (nginx and
the app share the host network); without nginx, the app listens on the configured ports itself.
Everything lives under .local-run/ (git-ignored); state.json records what was started, so
`inv local-stop` can stop exactly those processes, by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from deployer import REPO_ROOT, image, render, ui
from deployer.config import Settings
from deployer.docker_client import Docker, DockerError, ProgressCallback

# Everything a local run writes; SIFU_LOCAL_RUN_DIR moves it (the tests use their own).
STATE_DIR = Path(os.environ.get("SIFU_LOCAL_RUN_DIR") or REPO_ROOT / ".local-run")
CONTAINER_NAME = "sifu-local-run"
CONTAINER_UID = 1000
DEMO_COURSE = "course-v1:Demo+Notebooks+2026"
DEMO_FILE = "intro.ipynb"
DEMO_USERS = {"alice": "alice-pass", "bob": "bob-pass", "instructor": "instructor-pass"}


class LocalRunError(Exception):
    """Something the local stack needs is missing or failed; the message says what to do."""


@dataclass
class Layout:
    """Ports and paths of one local run."""

    root: Path
    lms_port: int
    public: dict[str, int]  # service -> port the browser uses
    internal: dict[str, int]  # service -> port the app listens on
    nginx: bool
    mode: str

    @property
    def efs(self) -> Path:
        return self.root / "efs"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def urls(self) -> dict[str, str]:
        return {
            "course page": f"http://127.0.0.1:{self.lms_port}/courses/{DEMO_COURSE}/notebooks/{DEMO_FILE}",
            "lms": f"http://127.0.0.1:{self.lms_port}/health",
            "sifu": f"http://127.0.0.1:{self.public['sifu']}/health",
            "jupyter": f"http://127.0.0.1:{self.public['jupyter']}/api",
        }


@dataclass
class Started:
    """What a run started: PIDs (with their start times, to recognise them later) and a container."""

    mode: str
    pids: dict[str, int] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    start_times: dict[str, str] = field(default_factory=dict)
    container: str = ""
    docker_host: str = ""
    urls: dict[str, str] = field(default_factory=dict)


def local_settings(s: Settings, lms_port: int) -> Settings:
    """The config as the local stack needs it: devlms as the LMS, plain http on 127.0.0.1."""
    lms = f"127.0.0.1:{lms_port}"
    return s.model_copy(update={
        "edx": s.edx.model_copy(update={"hostname": lms, "studio_hostname": "", "force_ssl": False,
                                        "oauth2_client_id": s.edx.oauth2_client_id or "sifu-dev",
                                        "oauth2_redirect_uri": f"http://{lms}/xblock/callback"}),
        "web": s.web.model_copy(update={"public_host": "127.0.0.1", "https": False,
                                        "frame_ancestors": [f"http://localhost:{lms_port}"]}),
    })


def with_ports(s: Settings, ports: dict[str, int]) -> Settings:
    return s.model_copy(update={"ports": s.ports.model_copy(update=ports)})


def plan_layout(s: Settings, mode: str, lms_port: int, offset: int, root: Path = STATE_DIR,
                use_nginx: bool | None = None) -> Layout:
    public = {svc: getattr(s.ports, svc) for svc in render.SERVICES}
    nginx = render.nginx_binary() is not None if use_nginx is None else use_nginx
    internal = {svc: port + offset for svc, port in public.items()} if nginx else dict(public)
    for svc, port in internal.items():
        if not 1024 <= port <= 65535:
            raise LocalRunError(f"internal port for {svc} would be {port}; choose a smaller --port-offset")
    return Layout(root=root, lms_port=lms_port, public=public, internal=internal, nginx=nginx, mode=mode)


def app_environment(public: Settings, secret_key: str, client_secret: str) -> dict[str, str]:
    """The container's environment, as Elastic Beanstalk sets it, plus the generated secrets."""
    env = render.container_environment(public, render.Facts())
    env["SIFU_SECRET_KEY"] = secret_key
    env["EDX_OAUTH2_CLIENT_SECRET"] = client_secret
    return env


# --- rendering --------------------------------------------------------------------------------------


def render_process_mode(app: Settings, layout: Layout) -> Path:
    """supervisord.conf + jupyter_server_config.py for this venv, from the image's templates."""
    conf_dir = layout.root / "conf"
    run_dir = layout.root / "run"
    for path in (conf_dir, run_dir, layout.efs):
        path.mkdir(parents=True, exist_ok=True)
    jupyter_config = conf_dir / "jupyter_server_config.py"
    text = render.render_template("jupyter_server_config.py.j2", render.jupyter_context(app, str(layout.efs), kernel_broker_socket=None))
    if os.geteuid() == 0:
        # Process mode only: the image runs Jupyter as UID 1000, but here it runs as whoever ran inv.
        text += "\n# Added by inv local-run (process mode, run as root).\nc.ServerApp.allow_root = True\n"
    jupyter_config.write_text(text)
    supervisord = conf_dir / "supervisord.conf"
    supervisord.write_text(render.render_template(
        "supervisord.conf.j2", render.supervisord_context(app, sys.executable, str(jupyter_config), str(run_dir), str(layout.efs))))
    return supervisord


def render_nginx(public: Settings, layout: Layout) -> Path:
    """nginx.conf in .local-run/nginx: the rendered vhosts, upstreams at 127.0.0.1:<internal ports>."""
    prefix = layout.root / "nginx"
    logs = prefix / "logs"
    (logs / "healthd").mkdir(parents=True, exist_ok=True)
    includes = []
    upstreams = {"upstreams": [{"name": render.upstream_name(svc), "address": "127.0.0.1", "port": layout.internal[svc]}
                               for svc in render.SERVICES]}
    path = prefix / "upstream.conf"
    path.write_text(render.render_template(".nginx/upstream.conf.j2", upstreams))
    includes.append(path)
    for svc in render.SERVICES:
        path = prefix / f"{svc}.conf"
        path.write_text(render.render_template(".nginx/vhost.conf.j2", render.vhost_context(public, svc, log_dir=str(logs), peers=False)))
        includes.append(path)
    conf = render.scratch_nginx_conf(prefix, includes)
    result = render.nginx_test(prefix, conf)
    if result.returncode != 0:
        raise LocalRunError(f"nginx -t rejected the local configuration:\n{result.stderr.strip()}")
    return conf


# --- processes -------------------------------------------------------------------------------------


def _spawn(name: str, args: list[str], env: dict[str, str], log: Path, started: Started) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=REPO_ROOT)
    started.pids[name] = process.pid
    started.commands[name] = args
    started.start_times[name] = _start_time(process.pid)
    return process


def _python_env(extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DEPLOYMENT_TOKEN"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def start_devlms(layout: Layout, public: Settings, client_secret: str, started: Started) -> None:
    args = [sys.executable, "-m", "devlms", "--dev", "--host", "127.0.0.1", "--port", str(layout.lms_port),
            "--sifu-url", f"http://127.0.0.1:{layout.public['sifu']}",
            "--client-id", public.edx.oauth2_client_id, "--redirect-uri", public.edx.oauth2_redirect_uri]
    _spawn("devlms", args, _python_env({"EDX_OAUTH2_CLIENT_SECRET": client_secret}), layout.root / "logs" / "devlms.log", started)


def start_nginx(conf: Path, layout: Layout, started: Started) -> None:
    nginx = render.nginx_binary()
    assert nginx
    _spawn("nginx", [nginx, "-p", str(conf.parent), "-c", str(conf)], dict(os.environ), layout.root / "logs" / "nginx.log", started)


def start_supervisord(conf: Path, layout: Layout, env: dict[str, str], started: Started) -> None:
    supervisord = Path(sys.executable).parent / "supervisord"
    if not supervisord.exists():
        raise LocalRunError(f"supervisord is not installed in {Path(sys.executable).parent}; run ./inv once (it installs the sifu extra)")
    state = layout.root / "state"
    state.mkdir(parents=True, exist_ok=True)
    env = _python_env({**env, "SIFU_NOTEBOOK_ROOT": str(layout.efs), "SIFU_STATE_DIR": str(state)})
    _spawn("supervisord", [str(supervisord), "--nodaemon", "--configuration", str(conf)], env, layout.root / "logs" / "app.log", started)


def machine_memory_mib() -> int:
    """This machine's memory (Linux: MemTotal, as converge reads it on an instance; also on macOS)."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1048576


def container_confinement(s: Settings, memory_mib: int) -> dict:
    """Docker SDK run() arguments that give the app container what an instance gives it: only the capabilities the
    kernel broker needs, no_new_privs, and converge's memory and pids limits (on EB the image's entrypoint and
    converge's docker update do this, since Dockerrun.aws.json v1 has no field for it)."""
    memory = render.container_memory_mb(s, memory_mib) * 1048576
    return {"cap_drop": ["ALL"], "cap_add": list(render.CONTAINER_CAPABILITIES),
            "security_opt": ["no-new-privileges:true"], "pids_limit": s.remote.container_pids_limit,
            "mem_limit": memory, "memswap_limit": memory}


def start_container(docker, image_ref: str, layout: Layout, env: dict[str, str], started: Started,
                    app: Settings) -> None:
    layout.efs.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(layout.efs, CONTAINER_UID, CONTAINER_UID)
    elif layout.efs.stat().st_uid != CONTAINER_UID:
        os.chmod(layout.efs, 0o777)  # the container's user (UID 1000) must write notebooks here
    try:
        docker.client.containers.get(CONTAINER_NAME).remove(force=True)
    except Exception:  # docker.errors.NotFound: nothing left from an earlier run
        pass
    container = docker.client.containers.run(
        image_ref, detach=True, name=CONTAINER_NAME, network_mode="host", environment=env,
        volumes={str(layout.efs.resolve()): {"bind": render.CONTAINER_NOTEBOOK_ROOT, "mode": "rw"}},
        labels={"sifu.local-run": "1"}, **container_confinement(app, machine_memory_mib()),
    )
    started.container = container.id
    started.docker_host = docker.base_url


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(urls: dict[str, str], started: Started, timeout: float = 90.0) -> dict[str, float]:
    begin = time.monotonic()
    ready: dict[str, float] = {}
    wanted = {name: url for name, url in urls.items() if name != "course page"}
    while time.monotonic() - begin < timeout:
        for name, url in wanted.items():
            if name not in ready and http_ok(url):
                ready[name] = time.monotonic() - begin
        if len(ready) == len(wanted):
            return ready
        for name, pid in started.pids.items():
            if not alive(pid):
                raise LocalRunError(f"{name} (pid {pid}) exited during start-up; see .local-run/logs/{name if name != 'supervisord' else 'app'}.log")
        time.sleep(0.2)
    missing = sorted(set(wanted) - set(ready))
    raise LocalRunError(f"not ready after {timeout:.0f}s: {', '.join(missing)}; see the logs in .local-run/logs/")


# --- stopping ----------------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return True


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); '' if unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def is_ours(started: Started, name: str) -> bool:
    """The PID recorded for name is still the process we started (PIDs are reused; titles change)."""
    pid = started.pids.get(name)
    return bool(pid) and alive(pid) and _start_time(pid) == started.start_times.get(name) != ""


def stop(started: Started, timeout: float = 20.0) -> list[str]:
    """Stop what a run started: the container, then each process group by PID (TERM, then KILL)."""
    stopped = []
    if started.container:
        docker = Docker(started.docker_host or None)
        try:
            container = docker.client.containers.get(started.container)
            container.stop(timeout=10)
            container.remove(force=True)
            stopped.append("container")
        except Exception:  # already gone
            pass
        docker.close()
    for name in ("nginx", "supervisord", "devlms"):
        pid = started.pids.get(name)
        if not pid or not is_ours(started, name):
            continue
        try:
            os.killpg(pid, signal.SIGTERM)  # each was started in its own session: its group is its children too
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
        stopped.append(name)
    return stopped


def save_state(layout: Layout, started: Started) -> None:
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.state_file.write_text(json.dumps(asdict(started), indent=2) + "\n")


def load_state(root: Path = STATE_DIR) -> Started | None:
    path = root / "state.json"
    if not path.exists():
        return None
    return Started(**json.loads(path.read_text()))


def clear_state(root: Path = STATE_DIR) -> None:
    (root / "state.json").unlink(missing_ok=True)


def new_secrets() -> tuple[str, str]:
    """A signing key and an OAuth2 client secret for this run only; passed by environment, never argv."""
    return secrets.token_hex(32), secrets.token_urlsafe(24)


def have_devlms() -> bool:
    return (REPO_ROOT / "devlms" / "__main__.py").exists()


# --- one run ------------------------------------------------------------------------------------------


@dataclass
class Run:
    layout: Layout
    started: Started
    ready: dict[str, float]  # service -> seconds until it answered


def up(s: Settings, mode: str = "auto", lms_port: int = 8000, port_offset: int = 10000,
       use_nginx: bool | None = None, network: str | None = None, emit: Callable[[str], None] = ui.say,
       build_progress: ProgressCallback | None = None, prompt: Callable[[str], str] | None = None) -> Run:
    """Bring the stack up (mode auto: container when a Docker engine answers, else process) and wait until
    it answers; whatever started is stopped again if anything fails."""
    previous = load_state()
    if previous and any(is_ours(previous, name) for name in previous.pids):
        raise LocalRunError("a local run is already up (see .local-run/state.json); stop it with `inv local-stop` first")
    if not have_devlms():
        raise LocalRunError("devlms/ (the development LMS) is not in this checkout; local-run needs it")
    public = local_settings(s, lms_port)
    docker = Docker()
    if mode == "auto":
        mode = "container" if docker.reachable() else "process"
        reason = "a Docker engine answers" if mode == "container" else f"no Docker engine answers at {docker.base_url}"
        emit(f"mode: {mode} ({reason})")
    layout = plan_layout(public, mode, lms_port, port_offset, use_nginx=use_nginx)
    emit("nginx: " + ("in front, rendered vhosts on the configured ports" if layout.nginx
                      else "not used (not installed or --no-nginx); the app listens on the configured ports"))
    app = with_ports(public, layout.internal)
    secret_key, client_secret = new_secrets()
    ui.register_secret(secret_key)
    ui.register_secret(client_secret)
    environment = app_environment(public, secret_key, client_secret)
    started = Started(mode=mode)
    try:
        if mode == "container":
            built = image.ensure_image(app, docker, network=network, progress=build_progress, prompt=prompt)
            emit(f"image: {built.ref} ({'built' if built.built else 'up to date'})")
            start_container(docker, built.ref, layout, environment, started, app)
        else:
            start_supervisord(render_process_mode(app, layout), layout, environment, started)
        if layout.nginx:
            start_nginx(render_nginx(public, layout), layout, started)
        start_devlms(layout, public, client_secret, started)
        started.urls = layout.urls()
        save_state(layout, started)
        ready = wait_ready(started.urls, started)
    except (image.ImageError, DockerError) as exc:
        down(started)
        raise LocalRunError(str(exc)) from None
    except BaseException:
        down(started)
        raise
    return Run(layout, started, ready)


def wait_for_exit(started: Started) -> None:
    """Block until one of the started processes exits (Ctrl-C raises KeyboardInterrupt as usual)."""
    while all(alive(pid) for pid in started.pids.values()):
        time.sleep(0.5)


def down(started: Started) -> list[str]:
    """Stop what a run started and forget it; returns what was stopped."""
    stopped = stop(started)
    clear_state()
    return stopped
