"""The rendered vhosts in a real nginx proxy HTTP and websockets to two real backends.

Removing the upgrade headers from the vhost must break the websocket (400, as Jupyter answers),
which shows the test can fail.
"""

import sys

import httpx
import pytest
import websocket

from deployer import config, render
from tests.support import nginx
from tests.support.processes import free_port, running

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not render.nginx_binary(), reason="nginx not installed")]


@pytest.fixture
def site(tmp_path):
    ports = {"sifu": free_port(), "jupyter": free_port()}
    backend_ports = {"sifu": free_port(), "jupyter": free_port()}
    settings = config.load(environ={}, flags={"ports.sifu": ports["sifu"], "ports.jupyter": ports["jupyter"]},
                           overrides_file=_empty(tmp_path), answers_file=tmp_path / "a.yml").settings
    backends = [running([sys.executable, "-m", "tests.support.echo_backend", "--port", str(port), "--name", name], port=port)
                for name, port in backend_ports.items()]
    for backend in backends:
        backend.__enter__()
    try:
        yield settings, ports, backend_ports
    finally:
        for backend in backends:
            backend.__exit__(None, None, None)


def _empty(tmp_path):
    path = tmp_path / "overrides.yml"
    path.write_text("{}\n")
    return path


def _serve(tmp_path, settings, backend_ports, ports, transform=lambda text: text):
    prefix = tmp_path / "nginx"
    conf = nginx.write_site(prefix, settings, "127.0.0.1", backend_ports, transform)
    return nginx.serving(prefix, conf, list(ports.values()))


def test_http_and_websocket_through_both_vhosts(tmp_path, site):
    settings, ports, backend_ports = site
    with _serve(tmp_path, settings, backend_ports, ports):
        for service, port in ports.items():
            reply = httpx.get(f"http://127.0.0.1:{port}/some/path", headers={"X-Forwarded-Proto": "https"})
            assert reply.status_code == 200
            assert reply.text == f"{service} /some/path host=127.0.0.1:{port} proto=https"
            sock = websocket.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=5)
            try:
                sock.send("6*7")
                assert sock.recv() == f"{service}:6*7"
            finally:
                sock.close()
        body = httpx.post(f"http://127.0.0.1:{ports['jupyter']}/upload", content=b"x" * (2 * 1024 * 1024))
        assert body.status_code == 200, "notebook-sized bodies must pass"
        assert (tmp_path / "nginx" / "logs" / "jupyter.access.log").read_text().count("/ws") == 1
        healthd = list((tmp_path / "nginx" / "logs" / "healthd").glob("application.log.*"))
        assert healthd and '"/some/path"200"' in healthd[0].read_text()


def test_without_upgrade_headers_the_websocket_fails(tmp_path, site):
    settings, ports, backend_ports = site

    def strip_upgrade(text):
        kept = [line for line in text.splitlines() if "proxy_set_header Upgrade" not in line and "proxy_set_header Connection" not in line]
        return "\n".join(kept) + "\n"

    with _serve(tmp_path, settings, backend_ports, ports, strip_upgrade):
        with pytest.raises(websocket.WebSocketBadStatusException) as caught:
            websocket.create_connection(f"ws://127.0.0.1:{ports['jupyter']}/ws", timeout=5)
        assert caught.value.status_code == 400
        assert httpx.get(f"http://127.0.0.1:{ports['jupyter']}/").status_code == 200


def test_access_logs_carry_no_token_from_a_query_string_or_referer(tmp_path, site):
    """Serve URLs hold `?Authorization=Bearer T`; no log nginx writes may keep T (issue 13)."""
    settings, ports, backend_ports = site
    token = "live-token-" + "x" * 32
    with _serve(tmp_path, settings, backend_ports, ports):
        for port in ports.values():
            reply = httpx.get(f"http://127.0.0.1:{port}/v1/api/notebooks/users/a/courses/c/files/f.ipynb",
                              params={"Authorization": f"Bearer {token}"},
                              headers={"Referer": f"https://lms.example/x?Authorization=Bearer%20{token}"})
            assert reply.status_code == 200
    logs = tmp_path / "nginx" / "logs"
    written = "".join(path.read_text() for path in logs.rglob("*.log*"))
    assert "/v1/api/notebooks/users/a/courses/c/files/f.ipynb" in written  # the requests were logged
    assert token not in written and "Authorization" not in written
