"""A student whose kernel runs out of memory is told so in the cell's output, with the limit named
(issue 13, "Limits users can see"; sifu/kernel_memory.py): a cell past the address-space limit (MemoryError),
and a kernel killed by SIGKILL from outside, as the OOM killer does."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from urllib.parse import urlsplit

import pytest

from sifu.kernel_memory import LIMIT
from tests.integration.sifu.helpers import COURSE, prepare_copy, students_kernel
from tests.support.jupyter_client import execute

pytestmark = pytest.mark.integration
FILE = "memory.ipynb"


V1 = "v1.kernel.websocket.jupyter.org"  # the binary protocol Notebook 7 picks; "json" is the legacy one
PROTOCOLS = pytest.mark.parametrize("protocol", ["json", V1])


def _decode(frame: str | bytes, protocol: str) -> dict:
    if protocol != V1:
        return json.loads(frame)
    from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1

    channel, parts = deserialize_msg_from_ws_v1(frame)
    header, parent, metadata, content = (json.loads(part) for part in parts[:4])
    return {"channel": channel, "header": header, "msg_type": header["msg_type"], "parent_header": parent,
            "metadata": metadata, "content": content}


def _run_cell(base_url: str, kernel_id: str, cookie_header: str, code: str, protocol: str, timeout: float = 60,
              on_started=None) -> list[dict]:
    """Send one execute_request; return the messages for it (and status changes) until its reply or the kernel's
    restarting/dead status. `on_started` is called once the kernel has started running the cell."""
    import websocket
    from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

    split = urlsplit(base_url)
    ws = websocket.create_connection(f"ws://{split.netloc}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}",
                                     header=[f"Cookie: {cookie_header}"], timeout=timeout,
                                     origin=f"{split.scheme}://{split.netloc}",
                                     subprotocols=[protocol] if protocol == V1 else None)
    try:
        msg_id = uuid.uuid4().hex
        request = {
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}
        if protocol == V1:
            ws.send_binary(serialize_msg_to_ws_v1(request, "shell", lambda part: json.dumps(part).encode()))
        else:
            ws.send(json.dumps(request))
        seen: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = _decode(ws.recv(), protocol)
            state = msg["content"].get("execution_state") if msg["msg_type"] == "status" else None
            if msg.get("parent_header", {}).get("msg_id") == msg_id or state in ("restarting", "dead"):
                seen.append(msg)
            if msg["msg_type"] == "execute_input" and on_started:
                on_started()
            if msg["msg_type"] == "execute_reply" or state in ("restarting", "dead"):
                return seen
        raise AssertionError(f"no reply nor restart before the timeout: {seen}")
    finally:
        ws.close()


def _stderr(messages: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")


@PROTOCOLS
def test_a_cell_past_the_memory_limit_is_told_the_limit(sifu_stack, protocol):
    token = sifu_stack.token("alice")
    prepare_copy(sifu_stack.sifu.url, token, "alice", COURSE, FILE)
    with students_kernel(sifu_stack, token, "alice", FILE) as (alice, kernel):
        messages = _run_cell(sifu_stack.jupyter.url, kernel, alice.cookie_header(), "hog = bytearray(6 * 1024 ** 3)",
                             protocol)
        assert any(m["msg_type"] == "error" and m["content"]["ename"] == "MemoryError" for m in messages), messages
        assert f"more memory than your kernel may use ({LIMIT} per kernel)" in _stderr(messages), messages
        assert execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(), "6*7") == "42"


@PROTOCOLS
def test_a_kernel_killed_like_the_oom_killer_does_is_explained_in_the_running_cell(sifu_stack, protocol):
    token = sifu_stack.token("alice")
    file = f"oom-{'v1' if protocol == V1 else 'json'}.ipynb"  # its own session: a killed kernel's is left restarting
    prepare_copy(sifu_stack.sifu.url, token, "alice", COURSE, file)
    with students_kernel(sifu_stack, token, "alice", file) as (alice, kernel):
        # Process mode: the kernel is Jupyter's user's, so the test can kill it as the OOM killer would.
        pid = int(execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(), "import os; os.getpid()"))
        messages = _run_cell(sifu_stack.jupyter.url, kernel, alice.cookie_header(), "import time; time.sleep(60)",
                             protocol, on_started=lambda: os.kill(pid, signal.SIGKILL))
        note = [m for m in messages if m["msg_type"] == "stream"]
        assert note and f"used more than its memory limit ({LIMIT} per kernel" in _stderr(note), messages
        assert messages.index(note[0]) < len(messages) - 1  # before the restarting status that ends the cell
        assert messages[-1]["content"]["execution_state"] == "restarting", messages
