"""Real Sifu, devlms, Jupyter Server and PostgreSQL processes for tests (no fakes).

Plain functions start one part each and return a handle with `.url` and `.stop()`; the pytest fixtures
at the bottom compose them. Every process gets random free ports, its own temporary directories and a
clean environment, and is stopped (TERM, then KILL) and reaped by PID at teardown.

    start_devlms(workdir, sifu_url, ...)            -> DevLms   (.url, .auth_code(user), .login(client, user))
    start_sifu(workdir, root, edx_url, ...)         -> SifuProc (.url, .env, .root)
    start_jupyter(workdir, root, secret, sifu_url)  -> JupyterProc (.url, .config_path)
    start_postgres(workdir)                         -> Postgres (.url: a SQLAlchemy URL)
    start_stack(workdir, database_url=None, ...)    -> Stack    (.devlms, .sifu, .jupyter, .root, .secret,
                                                                 .token(user), .identity_cookie(...), .stop())

Fixtures: `sifu_stack` (module scope; SQLite), `postgres_server` (session scope), `sifu_stack_postgres`
(module scope; Sifu on that PostgreSQL). Demo users (devlms.app.DEMO_USERS): alice, bob, instructor;
instructor is staff (STAFF_USERNAMES).
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.processes import free_port, stop as stop_process

if TYPE_CHECKING:
    from tests.support.tls import ServerCert

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
CLIENT_ID = "sifu-dev"
STAFF_USERNAMES = ("instructor",)
# The deploy's service credential (SIFU_SERVICE_TOKEN; generated once and kept in SSM on AWS): a fixed test value.
SERVICE_TOKEN = "test-service-token-" + "5" * 32
PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Proc:
    """A started process; stop() terminates and reaps it by PID."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.popen, timeout=15)  # its own process group: uvicorn workers, kernels


def spawn(name: str, argv: list[str], env: dict[str, str], workdir: Path, cwd: Path = REPO) -> Proc:
    log_path = workdir / f"{name}.log"
    log = open(log_path, "ab")
    popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return Proc(name, popen, log_path)


def wait_http(proc: Proc, url: str, timeout: float = 30.0, verify: bool | ssl.SSLContext = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()}")
        try:
            if httpx.get(url, timeout=1, verify=verify).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout}s:\n{proc.log()}")


def base_env(workdir: Path) -> dict[str, str]:
    """A minimal environment: nothing from the caller's shell leaks in (no AWS_*, no RDS_*)."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "SSL_CERT_FILE", "TMPDIR") if k in os.environ}
    env.update(HOME=str(workdir), PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    return env


# --- devlms ---------------------------------------------------------------------------------------------


@dataclass
class DevLms:
    url: str
    proc: Proc
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str

    def auth_code(self, username: str, password: str | None = None) -> str:
        """Sign in on /oauth2/authorize as a demo user, as a browser would, and return the code."""
        reply = httpx.post(f"{self.url}/oauth2/authorize", data={
            "username": username, "password": password if password is not None else demo_password(username),
            "client_id": self.client_id, "redirect_uri": self.redirect_uri, "state": "s"}, timeout=10)
        assert reply.status_code == 302, reply.text
        return parse_qs(urlsplit(reply.headers["location"]).query)["code"][0]

    def login(self, client: httpx.Client, username: str) -> None:
        """Give an httpx client a devlms session cookie (for the course page)."""
        reply = client.post(f"{self.url}/login", data={"username": username, "password": demo_password(username), "next": "/"})
        assert reply.status_code == 303, reply.text

    def stop(self) -> None:
        self.proc.stop()


def demo_password(username: str) -> str:
    """The password of a devlms demo user or load-test student (student-N)."""
    from devlms.app import DEMO_USERS

    return DEMO_USERS.get(username) or f"{username}-pass"


def start_devlms(workdir: Path, sifu_url: str, port: int | None = None, client_secret: str | None = None,
                 sifu_public_url: str = "", students: int = 0) -> DevLms:
    """`python -m devlms`; `students` adds student-1..student-N for load tests."""
    port = port or free_port()
    secret = client_secret or secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    redirect_uri = f"{url}/xblock/callback"
    env = base_env(workdir) | {"EDX_OAUTH2_CLIENT_SECRET": secret}
    proc = spawn("devlms", [PYTHON, "-m", "devlms", "--dev", "--host", "127.0.0.1", "--port", str(port),
                            "--sifu-url", sifu_url, "--client-id", CLIENT_ID, "--redirect-uri", redirect_uri,
                            *(["--sifu-public-url", sifu_public_url] if sifu_public_url else []),
                            *(["--students", str(students)] if students else [])], env, workdir)
    wait_http(proc, f"{url}/health")
    return DevLms(url, proc, CLIENT_ID, secret, redirect_uri)


# --- sifu -------------------------------------------------------------------------------------------------


@dataclass
class SifuProc:
    url: str
    proc: Proc
    env: dict[str, str] = field(repr=False)
    root: Path

    def stop(self) -> None:
        self.proc.stop()


def sifu_env(workdir: Path, root: Path, edx: DevLms, secret: str, jupyter_url: str, database_url: str | None = None,
             **extra: str) -> dict[str, str]:
    env = base_env(workdir) | {
        "EDX_HOSTNAME": urlsplit(edx.url).netloc,
        "EDX_OAUTH2_CLIENT_ID": edx.client_id,
        "EDX_OAUTH2_CLIENT_SECRET": edx.client_secret,
        "EDX_OAUTH2_CLIENT_REDIRECT_URI": edx.redirect_uri,
        "EDX_OAUTH2_FORCE_SSL": "false",
        "SIFU_NOTEBOOK_ROOT": str(root),
        "SIFU_SECRET_KEY": secret,
        "SIFU_STATE_DIR": str(workdir / "state"),
        "SIFU_JUPYTER_URL": jupyter_url,
        "SIFU_STAFF_USERNAMES": ",".join(STAFF_USERNAMES),
        "SIFU_FRAME_ANCESTORS": edx.url,
        "SIFU_COOKIE_SECURE": "false",
        "SIFU_SERVICE_TOKEN": SERVICE_TOKEN,
    }
    if database_url:
        env["SIFU_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def start_sifu(workdir: Path, env: dict[str, str], port: int | None = None, workers: int = 1, name: str = "sifu",
               tls: ServerCert | None = None, ca: Path | None = None) -> SifuProc:
    """`python -m sifu`; with `tls` (a certificate for 127.0.0.1 and the test's host names, from CA `ca`),
    the same app under uvicorn serving https itself (in production nginx terminates TLS in front of it)."""
    port = port or free_port()
    if tls:
        argv = [PYTHON, "-m", "uvicorn", "sifu.app:create_app", "--factory", "--host", "127.0.0.1", "--port", str(port),
                "--ssl-certfile", str(tls.cert), "--ssl-keyfile", str(tls.key)]
    else:
        argv = [PYTHON, "-m", "sifu", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    proc = spawn(name, argv, env, workdir)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    wait_http(proc, f"{url}/health", verify=ssl.create_default_context(cafile=ca) if tls else True)
    return SifuProc(url, proc, env, Path(env["SIFU_NOTEBOOK_ROOT"]))


# --- jupyter ----------------------------------------------------------------------------------------------


@dataclass
class JupyterProc:
    url: str
    proc: Proc
    config_path: Path

    def stop(self) -> None:
        self.proc.stop()


def render_jupyter_config(workdir: Path, root: Path, port: int, jupyter_settings: dict | None = None,
                          extra_config: str = "") -> Path:
    """The repository's jupyter_server_config.py.j2, rendered by deployer.render for this port and root.

    `jupyter_settings` replaces fields of the `jupyter` section (e.g. a 3 s cull timeout) in a Settings
    built for the test only: it bypasses the production minimums in deployer/config.py, which stay as they are.
    `extra_config`: config lines appended after the rendered ones, so they win (a benchmark's baseline).
    """
    from deployer import config as deployer_config
    from deployer import render

    overrides = workdir / "overrides.yml"
    overrides.write_text("{}\n")
    loaded = deployer_config.load(flags={"ports.jupyter": port}, environ={}, overrides_file=overrides,
                                  answers_file=workdir / "no-answers.yml")
    settings = loaded.settings
    if jupyter_settings:
        settings = settings.model_copy(update={"jupyter": settings.jupyter.model_copy(update=jupyter_settings)})
    text = render.render_template("jupyter_server_config.py.j2", render.jupyter_context(settings, str(root), kernel_broker_socket=None))
    path = workdir / "jupyter_server_config.py"
    path.write_text(text + extra_config)
    return path


def start_jupyter(workdir: Path, root: Path, secret: str, sifu_url: str, frame_ancestors: str = "", cookie_secure: bool = False,
                  port: int | None = None, jupyter_settings: dict | None = None,
                  tls: ServerCert | None = None, ca: Path | None = None, extra_config: str = "") -> JupyterProc:
    """Jupyter Server with the rendered config (plus `extra_config`, see render_jupyter_config), started as supervisord starts it: through `python -m sifu.launch
    jupyter`, which keeps `secret` out of Jupyter's environment and gives it the public key instead. It asks
    Sifu at `sifu_url` whether an identity's token is still active (Sifu may start after it).
    With `tls` (a certificate for 127.0.0.1 and the test's host names, from CA `ca`) it serves https, and
    trusts `ca` when it calls Sifu."""
    port = port or free_port()
    config_path = render_jupyter_config(workdir, root, port, jupyter_settings, extra_config)
    jupyter_home = workdir / "jupyter"
    env = base_env(workdir) | {
        "SIFU_SECRET_KEY": secret,
        "SIFU_FRAME_ANCESTORS": frame_ancestors,
        "SIFU_COOKIE_SECURE": "true" if cookie_secure else "false",
        "SIFU_REVOCATION_CACHE_SECONDS": "1",
        **({"SSL_CERT_FILE": str(ca)} if ca else {}),
        "JUPYTER_CONFIG_DIR": str(jupyter_home / "config"),
        "JUPYTER_DATA_DIR": str(jupyter_home / "data"),
        "JUPYTER_RUNTIME_DIR": str(jupyter_home / "runtime"),
        "IPYTHONDIR": str(jupyter_home / "ipython"),
    }
    argv = [PYTHON, "-m", "sifu.launch", "jupyter", "--sifu-url", sifu_url, "--",
            PYTHON, "-m", "jupyter_server", f"--config={config_path}", "--ServerApp.ip=127.0.0.1"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    if tls:
        argv += [f"--ServerApp.certfile={tls.cert}", f"--ServerApp.keyfile={tls.key}"]
    proc = spawn("jupyter", argv, env, workdir)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    wait_http(proc, f"{url}/api", timeout=60, verify=ssl.create_default_context(cafile=ca) if tls else True)
    return JupyterProc(url, proc, config_path)


# --- postgres -----------------------------------------------------------------------------------------------


@dataclass
class Postgres:
    url: str = field(repr=False)  # holds the password
    proc: Proc
    data_dir: Path

    def stop(self) -> None:
        # pg_ctl stop is the clean way; the Proc fallback reaps it if that fails.
        subprocess.run(_as_postgres_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
                       capture_output=True, timeout=60)
        self.proc.stop()


def _as_postgres_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the Debian package creates the `postgres` user.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start_postgres(workdir: Path) -> Postgres:
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError("PostgreSQL 15 is not installed: apt-get install postgresql (listed in tests/system-packages.txt)")
    data_dir = workdir / "pgdata"
    socket_dir = workdir / "pgsocket"
    for d in (data_dir, socket_dir):
        d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(d, "postgres", "postgres")
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    password = secrets.token_hex(12)
    pwfile = workdir / "pgpass"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres", "postgres")
    result = subprocess.run(_as_postgres_user([str(PG_BIN / "initdb"), "-D", str(data_dir), "-U", "sifu", "--pwfile", str(pwfile),
                                               "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"]),
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed: {result.stderr}")
    port = free_port()
    proc = spawn("postgres", _as_postgres_user([str(PG_BIN / "postgres"), "-D", str(data_dir), "-p", str(port),
                                               "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={socket_dir}",
                                               "-c", "fsync=off", "-c", "max_connections=100"]),
                 {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}, workdir, cwd=workdir)
    url = f"postgresql+psycopg://sifu:{password}@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    import psycopg

    while True:
        try:
            psycopg.connect(host="127.0.0.1", port=port, user="sifu", password=password, dbname="postgres", connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(f"PostgreSQL did not start:\n{proc.log()}")
            time.sleep(0.2)
    return Postgres(url, proc, data_dir)


# --- the whole stack ------------------------------------------------------------------------------------------


@dataclass
class Stack:
    devlms: DevLms
    sifu: SifuProc
    jupyter: JupyterProc
    root: Path
    secret: str = field(repr=False)
    workdir: Path

    def token(self, username: str) -> str:
        """A Sifu access token for a demo user, obtained the XBlock's way (auth code → POST /token)."""
        reply = httpx.post(f"{self.sifu.url}/token", headers={"Authorization": "Bearer None"}, timeout=20, json={
            "username": username, "auth_code": self.devlms.auth_code(username), "grant_type": "edx_auth_code", "path": "create"})
        assert reply.status_code == 200, reply.text
        return reply.json()["access_token"]

    def identity_cookie(self, username: str, ttl: int = 3600, token: str | None = None) -> dict[str, str]:
        """A Sifu-signed identity cookie for Jupyter, as the serve redirect sets it, bound to a real Sifu
        token (a fresh one unless given): revoking that token ends the identity."""
        from sifu import signing
        from sifu.db import hash_token

        token = token or self.token(username)
        value = signing.sign_identity(self.secret.encode(), username, int(time.time()) + ttl, hash_token(token))
        return {signing.COOKIE_NAME: value}

    def stop(self) -> None:
        # Each waits for its own exit: together, the stack takes as long as the slowest (Jupyter's kernels).
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda part: part.stop(), (self.jupyter, self.sifu, self.devlms)))


def start_stack(workdir: Path, database_url: str | None = None, sifu_workers: int = 1, jupyter_settings: dict | None = None,
                **sifu_extra: str) -> Stack:
    """devlms + Sifu + Jupyter on one notebook root, wired together over real HTTP.
    `jupyter_settings`: test values for the config's `jupyter` section (see render_jupyter_config)."""
    root = workdir / "notebooks"
    root.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    sifu_port, jupyter_port, lms_port = free_port(), free_port(), free_port()
    sifu_url, jupyter_url = f"http://127.0.0.1:{sifu_port}", f"http://127.0.0.1:{jupyter_port}"
    started: list = []

    def devlms_then_sifu() -> tuple[DevLms, SifuProc]:
        devlms = start_devlms(workdir, sifu_url, port=lms_port)
        started.append(devlms)
        env = sifu_env(workdir, root, devlms, secret, jupyter_url, database_url, **sifu_extra)
        sifu = start_sifu(workdir, env, port=sifu_port, workers=sifu_workers)
        started.append(sifu)
        return devlms, sifu

    def jupyter() -> JupyterProc:
        # Jupyter asks Sifu only when a request comes, so it may start before Sifu does
        proc = start_jupyter(workdir, root, secret, sifu_url, frame_ancestors=f"http://127.0.0.1:{lms_port}",
                             port=jupyter_port, jupyter_settings=jupyter_settings)
        started.append(proc)
        return proc

    # Jupyter's start (the slowest) overlaps devlms's and Sifu's
    with ThreadPoolExecutor(2) as pool:
        lms_and_sifu, jupyter_started = pool.submit(devlms_then_sifu), pool.submit(jupyter)
    try:
        (devlms, sifu), jupyter_proc = lms_and_sifu.result(), jupyter_started.result()
    except BaseException:
        for part in started:
            part.stop()
        raise
    return Stack(devlms, sifu, jupyter_proc, root, secret, workdir)


def _workdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def sifu_stack() -> Iterator[Stack]:
    """devlms + Sifu (SQLite) + Jupyter, started once per test module."""
    workdir = _workdir("sifu-stack-")
    stack = start_stack(workdir)
    yield stack
    stack.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """A private PostgreSQL 15 cluster on a random port, stopped at the end of the session."""
    workdir = _workdir("sifu-pg-")
    pg = start_postgres(workdir)
    yield pg
    pg.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def sifu_stack_postgres(postgres_server: Postgres) -> Iterator[Stack]:
    """The same stack with Sifu's records in PostgreSQL."""
    workdir = _workdir("sifu-stack-pg-")
    stack = start_stack(workdir, database_url=postgres_server.url)
    yield stack
    stack.stop()
    shutil.rmtree(workdir, ignore_errors=True)
