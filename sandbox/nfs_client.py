"""The NFS client of the sandbox's instance hosts: a stand-in for the kernel's, which this machine lacks.

On EC2 `mount -t nfs4 fs-….efs.REGION.amazonaws.com:/ /mnt/efs` (or amazon-efs-utils' `mount -t efs`, which ends
in the same call) asks the kernel's NFSv4 client to mount the file system. This machine's kernel has no NFS
client, so inside an instance host only, /sbin/mount.nfs (the helper mount(8) runs for nfs and nfs4) is
bind-mounted over by this script. It resolves the server as the host resolves it (its /etc/hosts: the VPC
resolver's stand-in), checks with `nfs-ls` that the NFSv4 server there (nfs-ganesha, sandbox/stores.py) answers,
then bind-mounts the directory that server exports, and applies the generic flags the caller asked for
(nosymfollow, nosuid, nodev, noexec, ro) to that mount. Every call is logged to /var/log/sandbox-mount.log.
"""

from __future__ import annotations

from pathlib import Path

EXPORTS_FILE = "sandbox-nfs-exports"  # in the host's work directory: "ADDRESS DIRECTORY" per line

MOUNT_SCRIPT = r"""#!/bin/bash
# Sandbox stand-in for mount.nfs/mount.nfs4 in an instance host (this kernel has no NFS client): see
# sandbox/nfs_client.py. Usage as mount(8) calls it: mount.nfs SPEC DIR [-o OPTIONS] [-s] [-v] ...
set -euo pipefail
spec=$1; dir=$2; shift 2
opts=""
while [ $# -gt 0 ]; do
    case $1 in -o) opts=$2; shift 2 ;; *) shift ;; esac
done
printf '%s %s %s\n' "$spec" "$dir" "$opts" >> /var/log/sandbox-mount.log
server=${spec%%:*}
path=${spec#*:}
address=$(getent hosts "$server" | awk '{print $1; exit}')
if [ -z "$address" ]; then
    echo "mount.nfs4: Failed to resolve server $server: Name or service not known" >&2
    exit 32
fi
answered=""
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if nfs-ls "nfs://$address/?version=4" >/dev/null 2>&1; then answered=yes; break; fi
    sleep 0.3
done
if [ -z "$answered" ]; then
    echo "mount.nfs4: Connection timed out: $address did not answer" >&2
    exit 32
fi
export_dir=$(awk -v a="$address" '$1 == a {print $2; exit}' @EXPORTS@)
if [ -z "$export_dir" ]; then
    echo "mount.nfs4: access denied by server while mounting $spec" >&2
    exit 32
fi
mount --bind "$export_dir$path" "$dir"
flags=bind
for flag in ${opts//,/ }; do
    case $flag in nosymfollow|nosuid|nodev|noexec|ro) flags="$flags,$flag" ;; esac
done
if [ "$flags" != bind ]; then mount -o "remount,$flags" "$dir"; fi
"""


def mount_script(work: Path) -> str:
    """The stand-in for a host whose work directory is ``work``."""
    return MOUNT_SCRIPT.replace("@EXPORTS@", str(work / EXPORTS_FILE))


def exports_file(exports: dict[str, str]) -> str:
    """The server address -> exported directory table the stand-in reads."""
    return "".join(f"{address} {directory}\n" for address, directory in sorted(exports.items()))
