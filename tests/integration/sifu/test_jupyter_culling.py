"""Idle kernels are culled by the rendered Jupyter config (jupyter.cull_idle_timeout / cull_interval).

The production minimums (60 s / 10 s, deployer/config.py) are kept: this module renders the template
from a Settings built for the test with a 3 s timeout and a 1 s interval.
"""

from __future__ import annotations

import re
import shutil
import time
from urllib.parse import quote

import pytest

from tests.integration.sifu.helpers import COURSE, prepare_copy
from tests.support.jupyter_client import JupyterSession, execute
from tests.support.sifu_stack import _workdir, start_stack

pytestmark = pytest.mark.integration
IDLE_TIMEOUT, INTERVAL = 3, 1


@pytest.fixture(scope="module")
def culling_stack():
    workdir = _workdir("sifu-cull-")
    stack = start_stack(workdir, jupyter_settings={"cull_idle_timeout": IDLE_TIMEOUT, "cull_interval": INTERVAL})
    yield stack
    stack.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def _kernel_ids(client: JupyterSession) -> set[str]:
    reply = client.http.get("/api/kernels")
    assert reply.status_code == 200, reply.text
    return {k["id"] for k in reply.json()}


def test_an_idle_kernel_is_culled_and_an_active_one_is_not(culling_stack):
    config = culling_stack.jupyter.config_path.read_text()
    assert f"cull_idle_timeout = {IDLE_TIMEOUT}\n" in config and f"cull_interval = {INTERVAL}\n" in config

    token = culling_stack.token("alice")
    for file in ("idle.ipynb", "active.ipynb"):
        prepare_copy(culling_stack.sifu.url, token, "alice", COURSE, file)
    alice = JupyterSession(culling_stack.jupyter.url, culling_stack.identity_cookie("alice", token=token))
    try:
        assert alice.prime_xsrf(f"/notebooks/users/alice/{quote(COURSE)}/idle.ipynb").status_code == 200
        # The kernel to keep active first, ready and running cells before the idle one starts (a slow
        # kernel start on a busy machine must not eat into its window).
        reply = alice.start_session(f"users/alice/{COURSE}/active.ipynb")
        assert reply.status_code == 201, reply.text
        active = reply.json()["kernel"]["id"]
        assert execute(culling_stack.jupyter.url, active, alice.cookie_header(), "6*7") == "42"
        started = time.monotonic()
        reply = alice.start_session(f"users/alice/{COURSE}/idle.ipynb")
        assert reply.status_code == 201, reply.text
        idle = reply.json()["kernel"]["id"]

        # Keep one kernel working (a cell every ~second, well inside the 3 s window) while the other sits idle.
        idle_gone_after = None
        while time.monotonic() - started < 4 * IDLE_TIMEOUT:
            assert execute(culling_stack.jupyter.url, active, alice.cookie_header(), "6*7") == "42"
            listed = _kernel_ids(alice)
            assert active in listed, "the active kernel was culled inside its idle window"
            if idle_gone_after is None and idle not in listed:
                idle_gone_after = time.monotonic() - started
            if idle_gone_after is not None and time.monotonic() - started > 2 * IDLE_TIMEOUT:
                break
            time.sleep(0.8)
        assert idle_gone_after is not None, "the idle kernel was never culled"
        assert IDLE_TIMEOUT <= idle_gone_after <= IDLE_TIMEOUT + 2 * INTERVAL + 5, idle_gone_after
        # Culled for inactivity (it never ran a cell, so Jupyter still calls its state 'starting'), not died.
        log = culling_stack.jupyter.proc.log_path.read_text(errors="replace")
        culled = re.findall(r"Culling '[a-z]+' kernel '[^']*' \(([0-9a-f-]+)\) with \d+ connections due to \d+ seconds of inactivity", log)
        assert culled == [idle], [line for line in log.splitlines() if "Culling" in line]

        # Once left alone, the active kernel goes the same way: the culler was not simply missing it.
        deadline = time.monotonic() + 4 * IDLE_TIMEOUT
        while active in _kernel_ids(alice):
            assert time.monotonic() < deadline, "the formerly active kernel was not culled after going idle"
            time.sleep(0.5)
    finally:
        alice.close()
