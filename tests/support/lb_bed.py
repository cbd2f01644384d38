"""A small bridge for the sandbox stand-ins' tests (load balancer, client, EFS, RDS): namespaces at addresses
in the upper half of the test subnet, `SIFU_TESTBED_SUBNET`.128/25, on a bridge of their own.

The SSH test bed (tests/support/hosts.py) holds the whole /24 on its own bridge and may be up in the same
session; the /25 is the longer prefix, so the root namespace routes these addresses here and the two never
meet. Names start with `SIFU_TESTBED_PREFIX` + "-l" and are removed at teardown (and before start, if an
interrupted run left them).
"""

from __future__ import annotations

from tests.support.netns import PREFIX, SUBNET, remove_names, run

BRIDGE = f"{PREFIX}-lbr"
BRIDGE_ADDRESS = f"{SUBNET}.129"
CIDR = 25
NAME_PREFIX = f"{PREFIX}-l"
_FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]


def address(n: int) -> str:
    """The n-th address of the bed (1 ≤ n ≤ 120)."""
    assert 1 <= n <= 120, n
    return f"{SUBNET}.{129 + n}"


class LbBed:
    def __init__(self):
        self.namespaces: list[str] = []

    def up(self) -> LbBed:
        self.cleanup()
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{BRIDGE_ADDRESS}/{CIDR}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        run("iptables", "-I", _FORWARD_RULE[0], "1", *_FORWARD_RULE[1:])  # dockerd may have set FORWARD to DROP
        return self

    def add_namespace(self, suffix: str, at: str) -> str:
        """Namespace `PREFIX-l<suffix>` with eth0 at `at`, a route to the bridge only."""
        name = f"{NAME_PREFIX}{suffix}"
        assert len(name) <= 15, name
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
        run("ip", "link", "set", name, "master", BRIDGE, "up")
        for argv in (["ip", "addr", "add", f"{at}/{CIDR}", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                     ["ip", "link", "set", "lo", "up"]):
            run("ip", "netns", "exec", name, *argv)
        return name

    def cleanup(self) -> None:
        """Remove this bed's names (only `PREFIX-l*` and the bridge), killing what runs in its namespaces."""
        remove_names(NAME_PREFIX)  # the bridge's name starts with it too
        while run("iptables", "-C", *_FORWARD_RULE, check=False).returncode == 0:
            run("iptables", "-D", *_FORWARD_RULE, check=False)
        self.namespaces.clear()

    down = cleanup
