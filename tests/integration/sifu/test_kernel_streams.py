"""sifu/kernel_streams.py in a real ipykernel: a print loop's output leaves the kernel in bounded pieces.

Without the extension the same loop sent a few messages of hundreds of MiB each (ipykernel flushes every 0.2 s,
whatever it buffered), which Jupyter parses whole before its rate limit drops them.
"""

from __future__ import annotations

import time

import pytest
from jupyter_client.manager import start_new_kernel

from sifu.kernel_streams import FLUSH_AT, KERNEL_OPTIONS

pytestmark = pytest.mark.integration

LOOP = "import sys, time\nt = time.time()\nwhile time.time() - t < 2: print('x' * 10000); sys.stderr.write('e' * 5000)"


def stream_sizes(extra: list[str]) -> dict[str, list[int]]:
    manager, client = start_new_kernel(kernel_name="python3", extra_arguments=extra)
    try:
        msg_id = client.execute(LOOP)
        sizes: dict[str, list[int]] = {"stdout": [], "stderr": []}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = client.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                sizes[msg["content"]["name"]].append(len(msg["content"]["text"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return sizes
        raise AssertionError("the loop's cell did not finish")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_print_loop_sends_its_output_in_pieces_of_about_a_mebibyte():
    sizes = stream_sizes(list(KERNEL_OPTIONS))
    for name, found in sizes.items():
        assert len(found) > 10, (name, len(found))  # the loop ran, in many pieces
        assert max(found) <= FLUSH_AT + 10001, (name, max(found))  # one write past the bound at most
