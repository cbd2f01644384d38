"""A cell flooding output is told so in its own output, in words for a student (sifu/kernel_output.py): Jupyter's
IOPub rate limit drops the output past 1 MB/s, and its own note (which tells the reader to change a server setting)
is replaced, on both websocket protocols. The kernel answers afterwards."""

from __future__ import annotations

import pytest

from sifu.kernel_output import RATE_NOTE
from tests.integration.sifu.helpers import COURSE, prepare_copy, students_kernel
from tests.integration.sifu.test_kernel_memory_notice import PROTOCOLS, _run_cell, _stderr
from tests.support.jupyter_client import execute

pytestmark = pytest.mark.integration
FILE = "flood.ipynb"


@PROTOCOLS
def test_a_flooding_cell_is_told_in_words_for_a_student(sifu_stack, protocol):
    token = sifu_stack.token("alice")
    prepare_copy(sifu_stack.sifu.url, token, "alice", COURSE, FILE)
    with students_kernel(sifu_stack, token, "alice", FILE) as (alice, kernel):
        # ~6 MB in well under a second, over Jupyter's 1 MB/s
        messages = _run_cell(sifu_stack.jupyter.url, kernel, alice.cookie_header(),
                             "import time\nfor _ in range(600):\n    print('x' * 10000)\n    time.sleep(0.001)",
                             protocol, timeout=120)
        stderr = _stderr(messages)
        assert RATE_NOTE in stderr
        assert "ServerApp.iopub" not in stderr and "config variable" not in stderr
        shown = sum(len(m["content"]["text"]) for m in messages if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
        assert shown < 600 * 10001  # some of it was left out
        assert execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(), "6*7") == "42"


def test_a_kernel_takes_a_bounded_number_of_websockets(sifu_stack):
    """Each websocket has its own bounds (unsent bytes); their number per kernel is capped, so they cannot be
    multiplied at will. The ones open keep working."""
    import uuid
    from urllib.parse import urlsplit

    import websocket

    from sifu.kernel_output import MAX_SOCKETS_PER_KERNEL

    token = sifu_stack.token("alice")
    prepare_copy(sifu_stack.sifu.url, token, "alice", COURSE, FILE)
    with students_kernel(sifu_stack, token, "alice", FILE) as (alice, kernel):
        split = urlsplit(sifu_stack.jupyter.url)

        def connect():
            return websocket.create_connection(
                f"ws://{split.netloc}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}",
                header=[f"Cookie: {alice.cookie_header()}"], timeout=30, origin=f"{split.scheme}://{split.netloc}")

        held = [connect() for _ in range(MAX_SOCKETS_PER_KERNEL)]
        try:
            extra = connect()
            with pytest.raises(websocket.WebSocketConnectionClosedException):
                while True:
                    extra.recv()  # the server closes it (1008) once it is over the cap
        finally:
            for ws in held:
                ws.close()
        assert execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(), "6*7") == "42"
