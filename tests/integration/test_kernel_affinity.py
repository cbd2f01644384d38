"""Jupyter's vhost follows a student's kernel to its instance (the instance cookie), with real nginx.

Two "instances", each a namespace on the test bed's bridge (tests/support/lb_bed.py) with our rendered nginx
in front of an app stand-in that answers with its instance's name: the load balancer's stickiness cookies
never reach a framed notebook in browsers that block third-party cookies, so nginx routes by a Partitioned
cookie of its own (.nginx/vhost.conf.j2). These requests come from the root namespace, as a load balancer's
would: X-Forwarded-Proto says what the listener spoke.
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import ExitStack

import httpx
import pytest
import yaml

from deployer import config, render
from tests.support import lb_bed
from tests.support.nginx import write_site
from tests.support.processes import running

pytestmark = pytest.mark.integration

APP_PORT = 8800
INSTANCES = {"a": lb_bed.address(21), "b": lb_bed.address(22)}
# Answers every request with the instance's name; on "b", /fail answers 502 (its Jupyter down behind its nginx).
APP = """
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"app": sys.argv[1], "path": self.path}).encode()
        self.send_response(502 if (self.path, sys.argv[1]) == ("/fail", "b") else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("affinity-config")
    overrides = folder / "overrides.yml"
    overrides.write_text(yaml.safe_dump({"edx": {"hostname": "lms.example.org"}}))
    return config.load(environ={}, overrides_file=overrides, answers_file=folder / "a.yml").settings


def wait_until_served(url: str, name: str, processes: list[subprocess.Popen]) -> None:
    """Until the instance's app answers through its nginx (nginx alone answers 502 while the app is not yet
    listening, which a test would take for a dead instance)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for process in processes:
            assert process.poll() is None, f"{process.args} exited with {process.returncode}"
        try:
            reply = httpx.get(url, timeout=1)
            if reply.status_code == 200 and reply.json().get("app") == name:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(url)


class Instance:
    def __init__(self, name: str, namespace: str, address: str, stack: ExitStack, settings, tmp_path):
        self.name, self.namespace, self.address = name, namespace, address
        self.settings, self.prefix = settings, tmp_path / name
        self.jupyter = f"http://{address}:{settings.ports.jupyter}"
        self.app = stack.enter_context(self._in_namespace([sys.executable, "-c", APP, name, str(APP_PORT)]))
        conf = write_site(self.prefix, settings, "127.0.0.1", {"sifu": APP_PORT, "jupyter": APP_PORT}, peers=True)
        self.nginx = stack.enter_context(self._in_namespace([render.nginx_binary(), "-p", str(self.prefix), "-c",
                                                             str(conf)]))
        wait_until_served(f"{self.jupyter}/", name, [self.app, self.nginx])

    def _in_namespace(self, argv: list[str]):
        return running(["ip", "netns", "exec", self.namespace, *argv])

    def stop_nginx(self) -> None:
        self.nginx.terminate()
        self.nginx.wait(timeout=10)


@pytest.fixture(scope="module")
def instances(settings, tmp_path_factory):
    bed = lb_bed.LbBed().up()
    tmp = tmp_path_factory.mktemp("affinity")
    try:
        with ExitStack() as stack:
            yield {name: Instance(name, bed.add_namespace(f"k{name}", address), address, stack, settings, tmp)
                   for name, address in INSTANCES.items()}
    finally:
        bed.down()


def get(instance: Instance, path: str = "/api/kernels", cookie: str | None = None, proto: str = "https"):
    headers = {"X-Forwarded-Proto": proto, **({"Cookie": f"sifu_instance={cookie}"} if cookie is not None else {})}
    return httpx.get(f"{instance.jupyter}{path}", headers=headers, timeout=10)


def test_a_request_without_the_cookie_is_served_here_and_names_this_instance(instances):
    a = instances["a"]
    reply = get(a)
    assert reply.json()["app"] == "a"
    assert reply.headers["set-cookie"] == (f"sifu_instance={a.address}; Path=/; HttpOnly; Secure; SameSite=None; "
                                           "Partitioned")
    plain = get(a, proto="http")  # a plain-http listener: browsers refuse SameSite=None without Secure
    assert plain.headers["set-cookie"] == f"sifu_instance={a.address}; Path=/; HttpOnly; SameSite=Lax"


def test_a_request_naming_another_instance_is_answered_by_that_instance(instances):
    a, b = instances["a"], instances["b"]
    reply = get(a, "/api/sessions?x=1", cookie=b.address)
    assert reply.status_code == 200 and reply.json() == {"app": "b", "path": "/api/sessions?x=1"}
    assert "set-cookie" not in reply.headers and reply.headers["x-routed-by"]
    # A request naming the instance that gets it is served there, and the cookie is not set again.
    here = get(b, cookie=b.address)
    assert here.json()["app"] == "b" and "set-cookie" not in here.headers


def test_notebook_7_files_follow_the_cookie_like_the_page_that_names_them(instances):
    """They are compressed in their own location (.nginx/vhost.conf.j2); during a rolling deploy another instance
    may run another version, so they come from the instance the page came from."""
    a, b = instances["a"], instances["b"]
    there = get(a, "/static/notebook/main.js", cookie=b.address)
    assert there.json() == {"app": "b", "path": "/static/notebook/main.js"} and there.headers["x-routed-by"]
    here = get(a, "/lab/extensions/x/static/remoteEntry.js")
    assert here.json()["app"] == "a"
    assert here.headers["set-cookie"].startswith(f"sifu_instance={a.address};")


@pytest.mark.parametrize("value", ["127.0.0.1", "8.8.8.8", "169.254.169.254", "10.0.0.1:22", "$(id)", "{{x}}",
                                   "../../etc/passwd", "10.0.0.1 10.0.0.2", "fe80::1"])
def test_a_cookie_naming_anything_but_a_private_address_is_served_here(instances, value):
    a = instances["a"]
    reply = get(a, cookie=value)
    assert reply.status_code == 200 and reply.json()["app"] == "a", value
    assert reply.headers["set-cookie"].startswith(f"sifu_instance={a.address};")


def test_the_peer_port_serves_locally_and_never_passes_a_request_on(instances):
    a, b = instances["a"], instances["b"]
    direct = httpx.get(f"http://{b.address}:{b.settings.ports.peer}/api/kernels", timeout=10,
                       headers={"Cookie": f"sifu_instance={a.address}"})
    assert direct.json()["app"] == "b" and "set-cookie" not in direct.headers


def test_when_the_named_instance_fails_the_request_is_served_here_and_the_cookie_moves(instances):
    a, b = instances["a"], instances["b"]
    # Its app answers 502 (Jupyter down behind its nginx): served by the instance that got the request.
    failing = get(a, "/fail", cookie=b.address)
    assert failing.status_code == 200 and failing.json()["app"] == "a"
    assert failing.headers["set-cookie"].startswith(f"sifu_instance={a.address};")
    # The instance is gone: the same, without waiting for more than the connect timeout.
    b.stop_nginx()
    gone = get(a, cookie=b.address)
    assert gone.status_code == 200 and gone.json()["app"] == "a"
    assert gone.headers["set-cookie"].startswith(f"sifu_instance={a.address};")

