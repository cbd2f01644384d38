"""An IPython extension every student's kernel loads (`--ext sifu.kernel_streams`, sifu/kernel_broker.py): a cell
that prints without end sends its output in pieces of at most about FLUSH_AT characters, and waits for each to be
sent before it prints more.

Why: ipykernel (7.4) sends what a stream buffered every 0.2 s, and a print loop fills that buffer faster than the
kernel's IO thread can send it: measured here, `while True: print('x' * 10000)` sent 4 messages in 4 s, the largest
275 MiB. Jupyter parses each message whole before its rate limit drops it, so one such loop took Jupyter's memory
up by hundreds of MiB (sifu/kernel_output.py bounds what a hostile kernel can send; this keeps an ordinary loop far
below that bound, and slows it to the pace Jupyter is sent output at). The student can undo it in their own kernel;
Jupyter's own bounds still hold then.
"""

from __future__ import annotations

import sys
from typing import Any

FLUSH_AT = 2 ** 20  # characters buffered in one stream before the cell waits for them to be sent
KERNEL_OPTIONS = ("--ext=sifu.kernel_streams",)  # on every kernel's command line (broker and zygote alike)


def load_ipython_extension(shell: Any) -> None:
    from ipykernel.iostream import OutStream

    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, OutStream):
            _bound(stream)


def _bound(stream: Any) -> None:
    write = stream.write

    def bounded_write(string: str) -> int | None:
        written = write(string)
        with stream._buffer_lock:
            buffered = sum(buffer.tell() for buffer in stream._buffers.values())
        if buffered >= FLUSH_AT:
            stream.flush()  # sent by the IO thread; returns once it is (or after ipykernel's flush timeout)
        return written

    stream.write = bounded_write
