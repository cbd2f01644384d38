"""`inv local-run`: devlms sign-in -> course page -> notebook served, in process and container mode.

Real processes throughout: devlms, nginx with the rendered vhosts, supervisord running Sifu and
Jupyter (from this venv, or inside the app image on the test engine). The browser's part is done
with an HTTP client: sign in, open the course page, follow the iframe to Sifu, get redirected to
Jupyter's notebook page.
"""

from __future__ import annotations

import json
import re
import socket
import time

import httpx
import pytest

from deployer.templating.context import CONTAINER_CAPABILITIES
from tests.integration.image.helpers import run_inv
from tests.support.app_image import image_environ


pytestmark = pytest.mark.integration
COURSE = "course-v1:Demo+Notebooks+2026"
FILE = "intro.ipynb"


def free_port_with_twin() -> int:
    """A free port whose +10000 twin (where the app listens behind nginx) is free too."""
    import random

    for _ in range(200):
        port = random.randint(20000, 50000)
        if not port_open(port) and not port_open(port + 10000):
            return port
    raise RuntimeError("no free port pair found")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def student_opens_notebook(lms: str) -> httpx.Response:
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        login = client.post(f"{lms}/login", data={"username": "alice", "password": "alice-pass",
                                                 "next": f"/courses/{COURSE}/notebooks/{FILE}"})
        assert login.status_code == 303
        page = client.get(lms + login.headers["location"])
        assert page.status_code == 200
        frame = re.search(r"<iframe[^>]*src=['\"]([^'\"]+)['\"]", page.text)
        assert frame, page.text[:2000]
        serve = client.get(frame.group(1).replace("&amp;", "&"))
        assert serve.status_code == 302, serve.text
        notebook = client.get(serve.headers["location"])
        return notebook


@pytest.fixture
def local_run_dir(tmp_path, monkeypatch):
    return tmp_path / "local-run"


def check_stack(result, environ, ports, lms_port, run_dir, mode):
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"mode: {mode}" in result.stdout
    assert "nginx: in front" in result.stdout
    assert f"http://127.0.0.1:{lms_port}/courses/{COURSE}/notebooks/{FILE}" in result.stdout
    notebook = student_opens_notebook(f"http://127.0.0.1:{lms_port}")
    assert notebook.status_code == 200 and "Jupyter Notebook" in notebook.text
    assert notebook.url.port == ports["jupyter"]  # through nginx on the public port
    copy = run_dir / "efs" / "users" / "alice" / COURSE / FILE
    assert json.loads(copy.read_text())["nbformat"] == 4
    access_log = run_dir / "nginx" / "logs" / "jupyter.access.log"
    deadline = time.monotonic() + 5  # nginx writes the line when it finalises the request
    while "GET /notebooks/users/alice/" not in access_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "GET /notebooks/users/alice/" in access_log.read_text()
    # The app itself listens behind nginx, on the offset ports.
    assert port_open(ports["sifu"] + 10000) and port_open(ports["jupyter"] + 10000)


def test_local_run_process_mode_without_docker(local_run_dir, docker_engine):
    ports = {"sifu": free_port_with_twin(), "jupyter": free_port_with_twin()}
    lms_port = free_port_with_twin()
    environ = {**image_environ(ports["sifu"], ports["jupyter"]), "SIFU_LOCAL_RUN_DIR": str(local_run_dir),
               "DOCKER_HOST": f"unix://{local_run_dir}-no-engine.sock"}
    result = run_inv("local-run", "--detach", "--lms-port", str(lms_port), engine=docker_engine, environ=environ, timeout=300)
    try:
        assert "(no Docker engine answers at unix://" in result.stdout
        check_stack(result, environ, ports, lms_port, local_run_dir, "process")
    finally:
        stopped = run_inv("local-stop", engine=docker_engine, environ=environ)
    assert stopped.returncode == 0 and "stopped: nginx, supervisord, devlms" in stopped.stdout
    assert not any(port_open(p) for p in (*ports.values(), lms_port, ports["sifu"] + 10000, ports["jupyter"] + 10000))
    assert not (local_run_dir / "state.json").exists()


def test_local_run_container_mode(local_run_dir, docker_engine, docker_client, localbase_image, app_image):
    ports = {"sifu": free_port_with_twin(), "jupyter": free_port_with_twin()}
    lms_port = free_port_with_twin()
    environ = {**image_environ(ports["sifu"], ports["jupyter"]), "SIFU_LOCAL_RUN_DIR": str(local_run_dir)}
    result = run_inv("local-run", "--detach", "--lms-port", str(lms_port), "--network", "host",
                     engine=docker_engine, environ=environ, timeout=600)
    try:
        check_stack(result, environ, ports, lms_port, local_run_dir, "container")
        containers = docker_client.containers.list(filters={"label": "sifu.local-run=1"})
        assert len(containers) == 1 and containers[0].image.tags[0].startswith("sifu-notebooks:")
        # Started as an instance ends up: only the broker's capabilities, no-new-privileges, converge's limits.
        host = containers[0].attrs["HostConfig"]
        added = sorted(name.removeprefix("CAP_") for name in host["CapAdd"])
        assert ([c.removeprefix("CAP_") for c in host["CapDrop"]], added, host["SecurityOpt"]) == (
            ["ALL"], sorted(CONTAINER_CAPABILITIES), ["no-new-privileges:true"]), host
        assert host["PidsLimit"] == 4096 and host["Memory"] == host["MemorySwap"] > 512 * 1048576
    finally:
        stopped = run_inv("local-stop", engine=docker_engine, environ=environ)
    assert stopped.returncode == 0 and "stopped: container, nginx, devlms" in stopped.stdout
    assert docker_client.containers.list(all=True, filters={"label": "sifu.local-run=1"}) == []
    assert not any(port_open(p) for p in (*ports.values(), lms_port))
