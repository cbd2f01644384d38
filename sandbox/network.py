"""A private bridge and network namespaces on it: the wiring under the sandbox's instance hosts and stand-ins.

Every name starts with a prefix and every address lies in one /24, both given by the caller, so two sandboxes (or
a sandbox and the tests' beds) can share a machine. The root namespace holds the bridge's `.1` address, so the
machine reaches every namespace directly. Everything created here is removed by `down()`, and `cleanup_leftovers()`
removes what an interrupted run with the same prefix left. Nothing here routes beyond the bridge: a namespace
reaches the bridge's /24 and nothing else.

`listening_socket` opens a socket inside a namespace from this process (setns on the calling thread), so a server
run by this process can answer at an address only that namespace has: the metadata stand-in on 169.254.169.254.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import threading

CIDR = 24
_CLONE_NEWNET = 0x40000000
# setns on this thread, around socket creation only; one namespace switch at a time in this process.
_SETNS_LOCK = threading.Lock()


def run(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result


def namespace_exists(name: str) -> bool:
    return name in run("ip", "netns", "list").stdout.split()


def link_exists(name: str) -> bool:
    return run("ip", "link", "show", name, check=False).returncode == 0


def in_namespace(name: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return run("ip", "netns", "exec", name, *argv, check=check)


class Bridge:
    """The bridge `PREFIX-br` at `SUBNET.1/24`, and the FORWARD rule that dockerd's DROP policy makes necessary."""

    def __init__(self, prefix: str, subnet: str):
        assert len(prefix) <= 10 and subnet.count(".") == 2, (prefix, subnet)
        self.prefix, self.subnet = prefix, subnet
        self.name = f"{prefix}-br"
        self.address = f"{subnet}.1"
        self.namespaces: list[str] = []
        self._forward_rule = ["FORWARD", "-i", self.name, "-o", self.name, "-j", "ACCEPT"]

    def up(self) -> Bridge:
        self.cleanup_leftovers()
        run("ip", "link", "add", self.name, "type", "bridge")
        run("ip", "addr", "add", f"{self.address}/{CIDR}", "dev", self.name)
        run("ip", "link", "set", self.name, "up")
        # dockerd (the tests', an instance's) may set FORWARD to DROP; allow traffic between our namespaces.
        run("iptables", "-I", self._forward_rule[0], "1", *self._forward_rule[1:])
        return self

    def add_namespace(self, name: str, address: str) -> str:
        """A namespace with eth0 on the bridge at address; the root-side veth is named like the namespace."""
        assert name.startswith(self.prefix) and len(name) <= 15, name
        assert address.startswith(self.subnet + "."), address
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
        run("ip", "link", "set", name, "master", self.name, "up")
        in_namespace(name, "ip", "addr", "add", f"{address}/{CIDR}", "dev", "eth0")
        in_namespace(name, "ip", "link", "set", "eth0", "up")
        in_namespace(name, "ip", "link", "set", "lo", "up")
        return name

    def add_private_link(self, outer: str, outer_address: str, inner: str, inner_address: str,
                         prefix_length: int = 24) -> str:
        """A namespace `inner` reachable only from namespace `outer`, over a veth pair off the bridge
        (`link-<inner>` in outer, `eth0` in inner): a service behind one host, such as its metadata service."""
        assert inner.startswith(self.prefix) and len(inner) <= 15, inner
        run("ip", "netns", "add", inner)
        self.namespaces.append(inner)
        device = "imds0"
        run("ip", "link", "add", device, "netns", outer, "type", "veth", "peer", "name", "eth0", "netns", inner)
        in_namespace(outer, "ip", "addr", "add", f"{outer_address}/{prefix_length}", "dev", device)
        in_namespace(inner, "ip", "addr", "add", f"{inner_address}/{prefix_length}", "dev", "eth0")
        for namespace, dev in ((outer, device), (inner, "eth0"), (inner, "lo")):
            in_namespace(namespace, "ip", "link", "set", dev, "up")
        return inner

    def remove_namespace(self, name: str) -> None:
        if link_exists(name):
            run("ip", "link", "del", name, check=False)
        if namespace_exists(name):
            run("ip", "netns", "del", name, check=False)
        if name in self.namespaces:
            self.namespaces.remove(name)

    def down(self) -> None:
        for name in list(self.namespaces):
            self.remove_namespace(name)
        self._remove_forward_rules()
        if link_exists(self.name):
            run("ip", "link", "del", self.name, check=False)

    def _remove_forward_rules(self) -> None:
        while run("iptables", "-C", *self._forward_rule, check=False).returncode == 0:
            run("iptables", "-D", *self._forward_rule, check=False)

    def cleanup_leftovers(self) -> None:
        """Remove what an interrupted earlier run with this prefix left (only names with this prefix)."""
        for name in run("ip", "netns", "list").stdout.split():
            if name.startswith(self.prefix):
                kill_namespace_processes(name)
                run("ip", "netns", "del", name, check=False)
        for line in run("ip", "-o", "link", "show").stdout.splitlines():
            name = line.split(":")[1].strip().split("@")[0]
            if name.startswith(self.prefix):
                run("ip", "link", "del", name, check=False)
        self._remove_forward_rules()


def kill_namespace_processes(name: str) -> None:
    """SIGKILL every process in network namespace `name`, by its id."""
    for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def listening_socket(namespace: str, address: str, port: int) -> socket.socket:
    """A TCP socket listening at address:port inside network namespace `namespace` (needs root).

    A socket stays in the namespace it was created in; only this thread switches, and switches back at once."""
    libc = ctypes.CDLL(None, use_errno=True)
    with _SETNS_LOCK:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {namespace} failed")
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                sock.listen(64)
            finally:
                if libc.setns(home, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to this process's namespace failed")
        finally:
            os.close(target)
            os.close(home)
    return sock
