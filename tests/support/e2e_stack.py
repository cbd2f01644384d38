"""The whole stack as production runs it, on this machine: for the end-to-end suite and benchmarks.

    Chromium / httpx -> nginx (rendered vhosts, public ports) -> the app container (supervisord: Sifu +
    Jupyter, on the internal ports; host network) -> a bind-mounted host folder standing in for EFS
                     -> devlms (the LMS and OAuth2 provider)

The image comes from the `app_image` fixture (built once per session for its ports, which are the
internal ones here). nginx listens on other free ports, as on an instance (and as `inv local-run`
does): the container's address on the host-network engine is 127.0.0.1. The container environment
is render.container_environment for the public settings plus the two secrets, as Elastic Beanstalk
sets it. Everything is stopped by PID / container id at teardown.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import html
import re
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import nginx
from tests.support.app_image import AppImage, prepare_notebook_root, wait_ready
from tests.support.processes import free_port
from tests.support.jupyter_client import JupyterSession
from tests.support.sifu_stack import CLIENT_ID, DevLms, demo_password, start_devlms

COURSE = "course-v1:Demo+E2E+2026"
STUDENTS = 50  # load-test learners devlms accepts (student-1..student-50)


def public_settings(app: AppImage, ports: dict[str, int], lms_port: int):
    """The app image's settings as the public side sees them: nginx ports, devlms as the LMS, plain http."""
    from deployer.localrun import local_settings, with_ports

    s = local_settings(with_ports(app.settings, ports), lms_port)
    return s.model_copy(update={
        "edx": s.edx.model_copy(update={"oauth2_client_id": CLIENT_ID}),
        "web": s.web.model_copy(update={"frame_ancestors": [f"http://127.0.0.1:{lms_port}"]}),
    })


@dataclass
class E2EStack:
    app: AppImage = field(repr=False)
    docker: object = field(repr=False)  # docker SDK client of the test engine
    settings: object = field(repr=False)  # public settings
    devlms: DevLms
    root: Path  # the host folder bind-mounted at /notebooks
    workdir: Path
    public: dict[str, int]  # nginx ports
    internal: dict[str, int]  # the app's ports (inside the container, host network)
    environment: dict[str, str] = field(repr=False)  # holds the two secrets
    container_id: str = ""

    @property
    def sifu_url(self) -> str:
        return f"http://127.0.0.1:{self.public['sifu']}"

    @property
    def jupyter_url(self) -> str:
        return f"http://127.0.0.1:{self.public['jupyter']}"

    @property
    def direct_sifu_url(self) -> str:
        return f"http://127.0.0.1:{self.internal['sifu']}"

    @property
    def direct_jupyter_url(self) -> str:
        return f"http://127.0.0.1:{self.internal['jupyter']}"

    @property
    def secret_key(self) -> str:
        return self.environment["SIFU_SECRET_KEY"]

    @property
    def client_secret(self) -> str:
        return self.environment["EDX_OAUTH2_CLIENT_SECRET"]

    def course_page(self, file: str, course: str = COURSE) -> str:
        from urllib.parse import quote

        return f"{self.devlms.url}/courses/{quote(course, safe='')}/notebooks/{quote(file, safe='')}"

    def copy_path(self, username: str, file: str, course: str = COURSE) -> Path:
        return self.root / "users" / username / course / file

    def container(self):
        return self.docker.containers.get(self.container_id)

    def start_container(self) -> dict[str, float]:
        """Run the app container (notebook root bind-mounted) and wait until both services answer."""
        from deployer import localrun, render

        container = self.docker.containers.run(
            self.app.ref, detach=True, network_mode="host", environment=self.environment,
            volumes={str(self.root): {"bind": render.CONTAINER_NOTEBOOK_ROOT, "mode": "rw"}},
            labels={"sifu.e2e": "1"}, **localrun.container_confinement(self.app.settings, localrun.machine_memory_mib()))
        self.container_id = container.id
        return wait_ready(self.app, container, timeout=90)

    def restart_container(self) -> dict[str, float]:
        """`docker restart`, as an instance reboot or EB redeploy does; waits until both services answer."""
        container = self.container()
        container.restart(timeout=10)
        return wait_ready(self.app, container, timeout=90)

    def remove_container(self) -> None:
        if self.container_id:
            try:
                self.container().remove(force=True)
            except Exception:  # docker.errors.NotFound: already gone
                pass
            self.container_id = ""

    def token(self, username: str) -> str:
        """A Sifu access token the XBlock's way (devlms auth code -> POST /token), through nginx."""
        reply = httpx.post(f"{self.sifu_url}/token", headers={"Authorization": "Bearer None"}, timeout=30, json={
            "username": username, "auth_code": self.devlms.auth_code(username), "grant_type": "edx_auth_code",
            "path": "create"})
        assert reply.status_code == 200, reply.text
        return reply.json()["access_token"]

    def open_course_page(self, client: httpx.Client, username: str, file: str, course: str = COURSE) -> str:
        """Sign in at devlms and open the course page (devlms runs the XBlock flow against Sifu through
        nginx); returns the iframe's serve URL."""
        login = client.post(f"{self.devlms.url}/login", data={"username": username, "password": demo_password(username),
                                                              "next": "/"})
        assert login.status_code == 303, login.text
        page = client.get(self.course_page(file, course))
        assert page.status_code == 200, page.text
        frame = re.search(r"<iframe id='notebook'[^>]*src='([^']+)'", page.text)
        assert frame, f"no notebook iframe on the course page:\n{page.text[:2000]}"
        return html.unescape(frame.group(1))

    def identity(self, username: str, file: str, course: str = COURSE) -> tuple[dict[str, str], str]:
        """The XBlock flow, then Sifu's serve redirect: the identity cookie it sets and the Jupyter URL."""
        with httpx.Client(timeout=30, follow_redirects=False) as client:
            serve = client.get(self.open_course_page(client, username, file, course))
        assert serve.status_code == 302, serve.text
        cookie = SimpleCookie()
        for header in serve.headers.get_list("set-cookie"):
            cookie.load(header)
        return {name: morsel.value for name, morsel in cookie.items()}, serve.headers["location"]

    def jupyter_session(self, username: str, file: str, base_url: str | None = None,
                        course: str = COURSE) -> tuple[JupyterSession, str]:
        """A student's Jupyter client (identity + _xsrf) and their copy's path on the notebook root."""
        cookies, location = self.identity(username, file, course)
        session = JupyterSession(base_url or self.jupyter_url, cookies)
        page = session.prime_xsrf(urlsplit(location).path)
        assert page.status_code == 200, page.text[:500]
        return session, f"users/{username}/{course}/{file}"

    def logs(self) -> str:
        try:
            return self.container().logs().decode(errors="replace")
        except Exception:
            return ""


def start_e2e_stack(exits: ExitStack, app: AppImage, docker, workdir: Path, students: int = STUDENTS) -> E2EStack:
    """Container + nginx + devlms; every part registered on `exits` to be stopped in reverse order."""
    from deployer import localrun

    internal = {"sifu": app.sifu_port, "jupyter": app.jupyter_port}
    public = {"sifu": free_port(), "jupyter": free_port()}
    lms_port = free_port()
    settings = public_settings(app, public, lms_port)
    secret_key, client_secret = localrun.new_secrets()
    environment = localrun.app_environment(settings, secret_key, client_secret)
    root = prepare_notebook_root(workdir / "efs")

    devlms = start_devlms(workdir, f"http://127.0.0.1:{public['sifu']}", port=lms_port, client_secret=client_secret,
                          students=students)
    exits.callback(devlms.stop)
    prefix = workdir / "nginx"
    conf = nginx.write_site(prefix, settings, "127.0.0.1", internal)
    exits.enter_context(nginx.serving(prefix, conf, list(public.values())))
    stack = E2EStack(app=app, docker=docker, settings=settings, devlms=devlms, root=root, workdir=workdir,
                     public=public, internal=internal, environment=environment)
    exits.callback(stack.remove_container)
    stack.start_container()
    return stack


@pytest.fixture(scope="session")
def e2e_stack(app_image, docker_client) -> Iterator[E2EStack]:
    """The whole stack, started once per session (tests leave it running and healthy)."""
    workdir = Path(tempfile.mkdtemp(prefix="sifu-e2e-"))
    workdir.chmod(0o755)
    with ExitStack() as exits:
        exits.callback(shutil.rmtree, workdir, True)
        stack = start_e2e_stack(exits, app_image, docker_client, workdir)
        yield stack


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout:.0f}s")


def random_file(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}.ipynb"
