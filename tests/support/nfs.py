"""nfs-ganesha (userspace NFSv4, VFS backend) in its own namespace, standing in for EFS.

This kernel has no NFS client, so hosts cannot really mount it. What stands in for the mount
(see hosts.MOUNT_STANDIN): the host's mount.nfs4 helper is replaced, inside that host's own
mount namespace only, by a script that logs the options it was given, checks with nfs-ls
that this server answers for the export, then bind-mounts the exported directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support.netns import Bridge, run

GANESHA_CONF = """\
NFS_CORE_PARAM {{
    Protocols = 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Bind_addr = {address};
}}
NFSv4 {{
    RecoveryBackend = fs;
    RecoveryRoot = {state}/recovery;
    Graceless = true;
}}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT {{
    Export_Id = 1;
    Path = {export};
    Pseudo = /;
    Protocols = 4;
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = WARN; }}
"""


class Ganesha:
    """One NFSv4 server exporting `export` at address, in namespace `namespace`."""

    def __init__(self, bridge: Bridge, workdir: Path, namespace: str, address: str):
        self.bridge, self.namespace, self.address = bridge, namespace, address
        self.state = workdir / "ganesha"
        self.export = workdir / "efs-export"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> Ganesha:
        (self.state / "recovery").mkdir(parents=True, exist_ok=True)
        self.export.mkdir(parents=True, exist_ok=True)
        # Like a new EFS file system: its root is root:root rwxr-xr-x, writable by root only.
        os.chown(self.export, 0, 0)
        self.export.chmod(0o755)
        conf = self.state / "ganesha.conf"
        conf.write_text(GANESHA_CONF.format(address=self.address, state=self.state, export=self.export))
        self.bridge.add_namespace(self.namespace, self.address)
        self.log = self.state / "ganesha.log"
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, "ganesha.nfsd", "-F", "-f", str(conf), "-L", str(self.log),
             "-p", str(self.state / "ganesha.pid"), "-N", "NIV_WARN"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ganesha.nfsd exited {self.process.returncode}: {self.log.read_text() if self.log.exists() else ''}")
            if self.answers():
                return self
            time.sleep(0.3)
        raise RuntimeError(f"ganesha did not answer on {self.address} within {timeout}s: {self.log.read_text() if self.log.exists() else ''}")

    def answers(self) -> bool:
        """nfs-ls from the root namespace (across the bridge) lists the export."""
        result = run("nfs-ls", f"nfs://{self.address}/?version=4", check=False, timeout=10)
        return result.returncode == 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.bridge.remove_namespace(self.namespace)
