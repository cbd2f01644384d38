"""A cell that floods output (prints without end, or sends huge display data) cannot take Jupyter down: there is one
Jupyter Server per container, shared by every student there, and it relays every kernel's output to the browser.

What bounds it, from the kernel to the browser:
- In the kernel (sifu/kernel_streams.py, loaded into every student's kernel): a print loop's output leaves in
  pieces of about 1 MiB, the loop waiting for each; ipykernel alone sends a loop's output in messages of hundreds of
  MiB. A student can undo that in their own kernel: what follows still holds then.
- Jupyter's own IOPub rate limits (jupyter_server's ZMQChannelsWebsocketConnection; our configuration sets them
  explicitly): past 1 MB/s of stream output or 1000 messages/s over a 3 s window, Jupyter drops a kernel's output
  (it still reads and discards it) until the rate falls, and writes a note into the cell. Jupyter's note tells the
  reader to change a server setting; the student gets RATE_NOTE instead.
- One message from a kernel is at most MAX_KERNEL_MESSAGE bytes (ZMQ_MAXMSGSIZE on every socket Jupyter opens to a
  kernel, set on the kernel manager's ZMQ context by sifu.jupyter.SifuKernelManager): ZMQ checks the size in the
  message's header before it allocates anything and drops the connection (it reconnects), so a 1 GB
  display_data never enters Jupyter's memory. Display data does not count towards Jupyter's data rate (one large
  figure is normal); this is its bound. It is high because ZMQ drops the kernel's connection with the message
  and what follows it until it reconnects (~0.1 s when measured; Jupyter now retries every
  sifu.jupyter.RECONNECT_MS): at 16 MiB, ipykernel's batches of a fast print loop (what a cell printed in 0.2 s is
  one message) were dropped whole, and with them the cell's result and its idle status,
  so Notebook showed the kernel busy after the student interrupted it.
- At most MAX_QUEUED_MESSAGES wait in a socket to a kernel for Jupyter to read them (ZMQ_RCVHWM; the kernel drops
  more): a kernel printing faster than Jupyter parses (the JSON protocol parses every message before the rate limit
  drops it) queued ZMQ's default 1000 of ipykernel's batches in Jupyter's memory. Measured through the image with
  three floods at once (tests/integration/image/test_hostile_floods.py), Jupyter's peak RSS went from 75 to 637
  MiB with 100 and to 203 MiB with 10. The cost: while Jupyter lags behind a flood, the kernel's messages past
  the ten are dropped, the flood's final idle status among them when the student interrupts it (Notebook then
  shows the kernel busy until its next message; the next cell runs normally).
- A browser (or a script) that does not read its websocket: tornado would buffer without end what Jupyter writes
  to it. Past MAX_UNSENT bytes waiting for one websocket, that websocket is closed (Notebook reconnects).
- At most MAX_SOCKETS_PER_KERNEL websockets per kernel, so the bound above cannot be multiplied at will.
- While no websocket is connected (the tab closed, or dropped as above), jupyter_server keeps the kernel's messages
  for the next connection, in a list without bound: it stops at MAX_OFFLINE_BUFFER bytes.
The student's own kernel is interrupted over the control channel (a REST call), which the flood does not block.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tornado.iostream import StreamBufferFullError

from sifu.kernel_memory import MemoryNoticeKernelWebsocketConnection

MIB = 2 ** 20
MAX_KERNEL_MESSAGE = 128 * MIB
MAX_QUEUED_MESSAGES = 10  # per socket to a kernel, waiting for Jupyter to read them (ZMQ_RCVHWM; ZMQ's default 1000)
MAX_UNSENT = 32 * MIB
MAX_SOCKETS_PER_KERNEL = 6
MAX_OFFLINE_BUFFER = 32 * MIB  # kept for a kernel while no websocket is connected (sifu.jupyter.SifuKernelManager)
RATE_NOTE = ("Your cell sends output faster than the notebook can show it, so some of it is left out until it slows "
             "down (the output is not lost from your kernel's point of view; it is not shown). To stop the cell, "
             "interrupt the kernel (the square button).")


class FloodBoundedKernelWebsocketConnection(MemoryNoticeKernelWebsocketConnection):
    """The kernel websocket (without Nagle, with the memory notes), bounded as the module says."""

    open_sockets: Counter = Counter()  # kernel id -> websockets open, across every connection in this Jupyter
    counted = False

    def connect(self):
        if self.open_sockets[self.kernel_id] >= MAX_SOCKETS_PER_KERNEL:
            self.log.warning("kernel %s already has %d websockets; refusing another", self.kernel_id, MAX_SOCKETS_PER_KERNEL)
            self.websocket_handler.close(1008, "too many connections to this kernel")
            refused = asyncio.get_running_loop().create_future()  # the handler awaits what connect returns
            refused.set_result(None)
            return refused
        self.open_sockets[self.kernel_id] += 1
        self.counted = True
        if self.websocket_handler.ws_connection is not None:
            self.websocket_handler.ws_connection.stream.max_write_buffer_size = MAX_UNSENT
        return super().connect()

    def disconnect(self):
        if not self.counted:
            return None  # refused in connect(): nothing was set up
        self.counted = False
        self.open_sockets[self.kernel_id] -= 1
        if self.open_sockets[self.kernel_id] <= 0:
            del self.open_sockets[self.kernel_id]
        return super().disconnect()

    def _drop_slow_reader(self) -> None:
        """The reader is MAX_UNSENT behind: close the connection at once (a close frame would queue behind it)."""
        self.log.warning("a websocket of kernel %s fell %d bytes behind; closing it", self.kernel_id, MAX_UNSENT)
        connection = self.websocket_handler.ws_connection
        if connection is not None and connection.stream is not None:
            connection.stream.close()

    def _on_zmq_reply(self, stream: Any, msg_list: Any) -> None:
        try:
            super()._on_zmq_reply(stream, msg_list)
        except StreamBufferFullError:
            self._drop_slow_reader()

    def write_stderr(self, error_message: str, parent_header: dict[str, Any]) -> None:
        if error_message.startswith(("IOPub data rate exceeded", "IOPub message rate exceeded")):
            error_message = RATE_NOTE  # jupyter_server's text tells the reader to change a server setting
        try:
            super().write_stderr(error_message, parent_header)
        except StreamBufferFullError:
            self._drop_slow_reader()
