"""nfs-ganesha standing in for EFS on the test bridge: sandbox.stores.NfsExport in a namespace made here.

This kernel has no NFS client, so hosts cannot really mount it. What stands in for the mount
(see hosts.MOUNT_STANDIN): the host's mount.nfs4 helper is replaced, inside that host's own
mount namespace only, by a script that logs the options it was given, checks with nfs-ls
that this server answers for the export, then bind-mounts the exported directory.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.stores import NfsExport
from tests.support.netns import Bridge


class Ganesha(NfsExport):
    """One NFSv4 server exporting `export` at address, in its own namespace `namespace` on `bridge`."""

    def __init__(self, bridge: Bridge, workdir: Path, namespace: str, address: str):
        super().__init__(workdir, namespace, address)
        self.bridge = bridge
        self.export = workdir / "efs-export"  # the path the test hosts bind-mount

    def start(self, timeout: float = 20.0) -> Ganesha:
        self.bridge.add_namespace(self.namespace, self.address)
        super().start(timeout)
        return self

    def stop(self) -> None:
        super().stop()
        self.bridge.remove_namespace(self.namespace)
