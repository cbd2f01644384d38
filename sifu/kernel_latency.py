"""Kernel websocket without Nagle's algorithm: a cell's reply frames leave as soon as Jupyter writes them.

Why: tornado leaves TCP_NODELAY off on a websocket (tornado/websocket.py, WebSocketHandler.set_nodelay:
"small messages may be delayed ... call self.set_nodelay(True) once the websocket connection is
established"), and jupyter_server's kernel websocket never calls it (jupyter_server/services/kernels/
websocket.py, KernelWebsocketHandler.open). One execute_request is answered by five small frames
(status busy, execute_input, execute_result, execute_reply, status idle). The first leaves at once; the
rest wait in the operating system's send buffer until the receiver (nginx, or the browser) ACKs the first,
and a receiver in interactive (delayed-ACK) mode ACKs only when its timer fires (~40 ms on Linux). Cells
run back to back paid those ~40 ms each, through nginx or not: 6x the kernel's own ZMQ round trip in
bench/kernel_roundtrip.py, about 1x with this. After a pause (a student thinking) the receiver usually
ACKs at once, so the stall comes and goes with the traffic's timing; with TCP_NODELAY it cannot happen.

The handler class is wired into jupyter_server's handler list, but the connection class it delegates to is
a configurable trait (ServerApp.kernel_websocket_connection_class) and its connect() runs inside the
handler's open(), once the websocket exists: that is where we switch Nagle off. Output streams are already
batched by ipykernel before they reach the websocket, so this adds no flood of tiny packets.
"""

from __future__ import annotations

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
    """jupyter_server's ZMQ channels connection, with TCP_NODELAY set on the browser's websocket."""

    def connect(self):
        if self.websocket_handler.ws_connection is not None:  # open() has it; tornado's set_nodelay asserts so
            self.websocket_handler.set_nodelay(True)
        return super().connect()
