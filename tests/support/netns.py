"""A private bridge and network namespaces on it: the wiring under the test hosts and "EFS".

Only names prefixed `sifurm` and addresses in 10.231.0.0/24 are used (other test beds on this
machine use other prefixes). The root namespace holds the bridge address, so tests reach every
namespace directly (curl "from outside" a host). Everything created here is removed at teardown.
"""

from __future__ import annotations

import os
import subprocess

# Two beds can coexist on one machine under different names and subnets: SIFU_TESTBED_PREFIX=sifudp
# SIFU_TESTBED_SUBNET=10.232.0 (the deploy tests' bed while the remote tests run elsewhere).
PREFIX = os.environ.get("SIFU_TESTBED_PREFIX", "sifurm")
BRIDGE = f"{PREFIX}-br"
SUBNET = os.environ.get("SIFU_TESTBED_SUBNET", "10.231.0")
BRIDGE_ADDRESS = f"{SUBNET}.1"
CIDR = 24


def run(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result


def _exists(kind: str, name: str) -> bool:
    if kind == "netns":
        return name in run("ip", "netns", "list").stdout.split()
    return run("ip", "link", "show", name, check=False).returncode == 0


_FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]


class Bridge:
    """The bridge, its address in the root namespace, and the FORWARD rule dockerd's DROP policy needs."""

    def __init__(self):
        self.namespaces: list[str] = []

    def up(self) -> Bridge:
        self.cleanup_leftovers()
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{BRIDGE_ADDRESS}/{CIDR}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        # dockerd (run by other tests) sets FORWARD to DROP; allow traffic between our namespaces.
        run("iptables", "-I", _FORWARD_RULE[0], "1", *_FORWARD_RULE[1:])
        return self

    def add_namespace(self, name: str, address: str) -> str:
        """A namespace with eth0 on the bridge at address; the root-side veth is named like the namespace."""
        assert name.startswith(PREFIX) and len(name) <= 15, name
        assert address.startswith(SUBNET + "."), address
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
        run("ip", "link", "set", name, "master", BRIDGE, "up")
        run("ip", "netns", "exec", name, "ip", "addr", "add", f"{address}/{CIDR}", "dev", "eth0")
        run("ip", "netns", "exec", name, "ip", "link", "set", "eth0", "up")
        run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        return name

    def remove_namespace(self, name: str) -> None:
        if _exists("link", name):
            run("ip", "link", "del", name, check=False)
        if _exists("netns", name):
            run("ip", "netns", "del", name, check=False)
        if name in self.namespaces:
            self.namespaces.remove(name)

    def down(self) -> None:
        for name in list(self.namespaces):
            self.remove_namespace(name)
        while run("iptables", "-C", *_FORWARD_RULE, check=False).returncode == 0:
            run("iptables", "-D", *_FORWARD_RULE, check=False)
        if _exists("link", BRIDGE):
            run("ip", "link", "del", BRIDGE, check=False)

    @staticmethod
    def cleanup_leftovers() -> None:
        """Remove what an interrupted earlier run of ours left (only sifurm-prefixed names).

        One test bed at a time: the remote tests and bench/converge.py must not run together."""
        remove_names(PREFIX)
        while run("iptables", "-C", *_FORWARD_RULE, check=False).returncode == 0:
            run("iptables", "-D", *_FORWARD_RULE, check=False)


def remove_names(prefix: str) -> None:
    """Delete every namespace and link whose name starts with `prefix`, killing (by id) what an interrupted
    run left inside those namespaces."""
    import signal

    for name in run("ip", "netns", "list").stdout.split():
        if name.startswith(prefix):
            for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run("ip", "netns", "del", name, check=False)
    for line in run("ip", "-o", "link", "show").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefix):
            run("ip", "link", "del", name, check=False)
