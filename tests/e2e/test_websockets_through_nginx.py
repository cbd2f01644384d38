"""The kernel websocket passes the rendered vhost; the same vhost without the upgrade headers breaks it."""

from __future__ import annotations

import pytest
import websocket

from tests.support import nginx
from tests.support.e2e_stack import public_settings, random_file
from tests.support.jupyter_client import execute
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e


def strip_upgrade(text: str) -> str:
    kept = [line for line in text.splitlines()
            if "proxy_set_header Upgrade" not in line and "proxy_set_header Connection" not in line]
    return "\n".join(kept) + "\n"


def test_kernel_round_trip_through_nginx_and_failure_without_upgrade_headers(e2e_stack, tmp_path):
    student, path = e2e_stack.jupyter_session("bob", random_file("websocket"))
    session = student.start_session(path)
    assert session.status_code == 201, session.text
    kernel = session.json()["kernel"]["id"]
    try:
        assert execute(e2e_stack.jupyter_url, kernel, student.cookie_header(), "6*7") == "42"
        # A second nginx on other ports, the same rendered vhosts minus the two upgrade headers.
        ports = {"sifu": free_port(), "jupyter": free_port()}
        settings = public_settings(e2e_stack.app, ports, int(e2e_stack.devlms.url.rsplit(":", 1)[1]))
        conf = nginx.write_site(tmp_path / "nginx", settings, "127.0.0.1", e2e_stack.internal, strip_upgrade)
        assert "proxy_set_header Upgrade" not in (tmp_path / "nginx" / "jupyter.conf").read_text()
        with nginx.serving(tmp_path / "nginx", conf, list(ports.values())):
            with pytest.raises(websocket.WebSocketBadStatusException) as caught:
                execute(f"http://127.0.0.1:{ports['jupyter']}", kernel, student.cookie_header(), "6*7", timeout=10)
            assert caught.value.status_code == 400  # what Jupyter answers a websocket request without Upgrade
        # and the real vhost still works
        assert execute(e2e_stack.jupyter_url, kernel, student.cookie_header(), "6*7") == "42"
    finally:
        student.request("DELETE", f"/api/sessions/{session.json()['id']}")
        student.close()
