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
