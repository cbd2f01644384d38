"""Students are told, in the cell's own output, when their kernel ran out of memory and what its limit is.

Two ways a kernel runs out (sifu/kernel_limits.py):
- a cell asks for more than the kernel's address-space limit: Python raises MemoryError and the kernel lives
  on; the bare `MemoryError` traceback does not say there is a limit, so a note naming it goes before it;
- the instance runs out of memory and the OOM killer takes a kernel (kernels are its first choice): the
  process dies by SIGKILL, Jupyter restarts it, and Notebook would only say that the kernel "died". Here the
  note goes to the cell that was running, before the "restarting" (or "dead") status clears its request.

The note is a stderr stream message whose parent is the cell's execute_request, which is what Notebook's
output area shows; Jupyter Server writes it to the websocket itself (the kernel is gone, or must not be
trusted to say it). LimitedKernelManager (sifu/jupyter.py) records how the kernel exited.
"""

from __future__ import annotations

import signal
from typing import Any

from sifu.kernel_latency import NoDelayKernelWebsocketConnection
from sifu.kernel_limits import GIB, LIMITS

LIMIT = f"{LIMITS['RLIMIT_AS'] // GIB} GiB"
MEMORY_ERROR_NOTE = (f"This cell asked for more memory than your kernel may use ({LIMIT} per kernel). Your kernel "
                     "is still running: work on smaller pieces of data, or free what you no longer need (del name).")
KILLED_NOTE = (f"Your kernel was stopped because it used more than its memory limit ({LIMIT} per kernel, less when "
               "the server is short of memory). Its variables are lost; it restarts now: run your cells again, "
               "on less data.")


def killed_for_memory(exit_code: int | None) -> bool:
    """SIGKILL is what the OOM killer sends; Jupyter itself never kills a running kernel it means to keep."""
    return exit_code == -signal.SIGKILL


class MemoryNoticeKernelWebsocketConnection(NoDelayKernelWebsocketConnection):
    """The kernel websocket (without Nagle), adding the memory notes above to the cell's output."""

    running_cell: dict[str, Any] | None = None  # the execute_request header of the cell the kernel is running

    def _on_error(self, channel: str, msg: dict[str, Any], msg_list: list) -> None:
        # Called by jupyter_server for every message from the kernel, before it is written to the websocket.
        header = msg["header"] = self.get_part("header", msg["header"], msg_list)
        kind = header.get("msg_type")
        if kind == "execute_input":
            self.running_cell = self.get_part("parent_header", msg["parent_header"], msg_list)
        elif kind == "execute_reply":
            self.running_cell = None
        elif kind == "error" and self.get_part("content", msg["content"], msg_list).get("ename") == "MemoryError":
            self.write_stderr(MEMORY_ERROR_NOTE, self.get_part("parent_header", msg["parent_header"], msg_list))
        super()._on_error(channel, msg, msg_list)

    def _note_if_killed(self) -> None:
        stopped_for = getattr(self.kernel_manager, "stopped_for", None)  # the kernel broker's reason (disk cap)
        if stopped_for:
            self.write_stderr(stopped_for, self.running_cell or {})
        elif killed_for_memory(getattr(self.kernel_manager, "exit_code", None)):
            self.write_stderr(KILLED_NOTE, self.running_cell or {})
        self.running_cell = None

    def on_kernel_restarted(self) -> None:
        self._note_if_killed()
        super().on_kernel_restarted()

    def on_restart_failed(self) -> None:
        self._note_if_killed()
        super().on_restart_failed()
