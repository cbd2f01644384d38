"""The tests' bridge and namespaces: sandbox/network.py under the test beds' names.

Only names prefixed `sifurm` and addresses in 10.231.0.0/24 are used by default (other test beds on this
machine use other prefixes). The root namespace holds the bridge address, so tests reach every
namespace directly (curl "from outside" a host). Everything created here is removed at teardown.
"""

from __future__ import annotations

import os

from sandbox import network
from sandbox.network import CIDR, run

# Two beds can coexist on one machine under different names and subnets: SIFU_TESTBED_PREFIX=sifudp
# SIFU_TESTBED_SUBNET=10.232.0 (the deploy tests' bed while the remote tests run elsewhere).
PREFIX = os.environ.get("SIFU_TESTBED_PREFIX", "sifurm")
BRIDGE = f"{PREFIX}-br"
SUBNET = os.environ.get("SIFU_TESTBED_SUBNET", "10.231.0")
BRIDGE_ADDRESS = f"{SUBNET}.1"


class Bridge(network.Bridge):
    """sandbox.network.Bridge under this bed's prefix and subnet."""

    def __init__(self):
        super().__init__(PREFIX, SUBNET)


def remove_names(prefix: str) -> None:
    """Delete every namespace and link whose name starts with `prefix`, killing (by id) what an interrupted
    run left inside those namespaces."""
    network.Bridge(prefix, SUBNET).cleanup_leftovers()


__all__ = ["BRIDGE", "BRIDGE_ADDRESS", "CIDR", "PREFIX", "SUBNET", "Bridge", "remove_names", "run"]
