"""`sifu-kernel-broker`: the kernel provisioner that has the root broker (sifu/kernel_broker.py) start, signal and
release every kernel as its student's own uid. Jupyter never starts a kernel process itself.

It fails closed: when the broker cannot be reached or refuses, the kernel does not start and the student sees
why; there is no fallback to jupyter_client's LocalProvisioner (sifu.jupyter.LimitedKernelManager names this
provisioner for every kernel unless the configuration says `kernel_launch = "same-user"`, which only the
process-mode local run's configuration does).

Kernels talk over ipc sockets in the student's kernel directory (only their uid and Jupyter's group enter it),
so no other kernel can connect to them, and their connection file (the HMAC key) is in that directory too.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning.provisioner_base import KernelProvisionerBase
from tornado import web
from traitlets import Unicode

NAME = "sifu-kernel-broker"
BROKER_DOWN = ("The kernel service is not running, so your notebook's kernel cannot start. "
               "Try again in a minute; if it persists, tell the course team.")


class BrokerUnavailable(web.HTTPError):
    """The broker did not answer or refused. An HTTP error, so the request that started the kernel answers 503
    with this message (Notebook shows it) rather than a bare 500."""

    def __init__(self, message: str):
        super().__init__(503, message)


class BrokerProvisioner(KernelProvisionerBase):
    socket_path = Unicode("/run/sifu-broker/broker.sock", config=True, help="The kernel broker's Unix socket")

    pid: int | None = None
    stopped_for: str | None = None  # why the broker stopped the kernel (the disk cap), told to the student

    @property
    def has_process(self) -> bool:
        return self.pid is not None

    async def _ask(self, **request: Any) -> dict[str, Any]:
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:
            raise BrokerUnavailable(BROKER_DOWN) from None
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        except OSError:
            raise BrokerUnavailable(BROKER_DOWN) from None
        finally:
            writer.close()
        try:
            reply = json.loads(line)
        except ValueError:
            raise BrokerUnavailable(BROKER_DOWN) from None
        if "error" in reply:
            raise BrokerUnavailable(f"Your kernel cannot start: {reply['error']}")
        return reply

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        km = self.parent
        cwd = str(kwargs.get("cwd") or os.getcwd())
        directory = (await self._ask(op="prepare", cwd=cwd))["kernel_dir"]
        # ipc sockets in the student's own kernel directory: no loopback port any other process could connect to.
        km.transport = "ipc"
        km.ip = f"{directory}/kernel-{self.kernel_id}"
        km.connection_file = f"{directory}/kernel-{self.kernel_id}.json"
        env = kwargs.get("env") or {}
        km.write_connection_file(jupyter_session=env.get("JPY_SESSION_NAME", ""))
        self.connection_info = km.get_connection_info()
        kwargs.pop("extra_arguments", None)
        return await super().pre_launch(cmd=[], **kwargs)  # the broker builds the command itself

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        reply = await self._ask(op="start", cwd=str(kwargs.get("cwd") or os.getcwd()),
                                connection_file=self.parent.connection_file, env=dict(kwargs.get("env") or {}))
        self.pid = reply["pid"]
        return self.connection_info

    async def poll(self) -> int | None:
        if self.pid is None:
            return 0
        try:
            reply = await self._ask(op="poll", pid=self.pid)
        except BrokerUnavailable:
            return 1  # the broker no longer knows it: gone
        self.stopped_for = reply.get("stopped_for") or self.stopped_for
        return reply["returncode"]

    async def wait(self) -> int | None:
        while (code := await self.poll()) is None:
            await asyncio.sleep(0.1)
        return code

    async def send_signal(self, signum: int) -> None:
        if self.pid is not None:
            await self._ask(op="signal", pid=self.pid, signum=int(signum))

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        """The broker kills what is left of the kernel's session and, if its student has no other kernel, every
        process of that uid."""
        if self.pid is not None:
            try:
                await self._ask(op="release", pid=self.pid)
            except BrokerUnavailable:
                pass
            self.pid = None

    async def get_provisioner_info(self) -> dict[str, Any]:
        return {**await super().get_provisioner_info(), "pid": self.pid}

    async def load_provisioner_info(self, provisioner_info: dict) -> None:
        await super().load_provisioner_info(provisioner_info)
        self.pid = provisioner_info.get("pid")
