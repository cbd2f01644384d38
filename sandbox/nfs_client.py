"""The NFS client of the sandbox's instance hosts: a stand-in for the kernel's, which this machine lacks.

On EC2 `mount -t nfs4 fs-….efs.REGION.amazonaws.com:/ /mnt/efs` (or amazon-efs-utils' `mount -t efs`, which ends
in the same call) asks the kernel's NFSv4 client to mount the file system. This machine's kernel has no NFS
client, so inside an instance host only, /sbin/mount.nfs (the helper mount(8) runs for nfs and nfs4) is
bind-mounted over by this script. It resolves the server as the host resolves it (its /etc/hosts: the VPC
resolver's stand-in), checks with `nfs-ls` that the NFSv4 server there (nfs-ganesha, sandbox/stores.py) answers,
then bind-mounts the directory that server exports, and applies the generic flags the caller asked for
(nosymfollow, nosuid, nodev, noexec, ro) to that mount. Every call is logged (mount-standin.log); a file
`refuse-nosymfollow` next to that log makes it refuse that option, as an older helper would. The tests' SSH hosts
use the same script (tests/support/hosts.py).
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
state=@STATE@
mkdir -p "$state"
printf '%s %s %s\n' "$spec" "$dir" "$opts" >> "$state/mount-standin.log"
# refuse-nosymfollow: behave like a helper that does not know that option (mount.nfs's message and status).
if [ -e "$state/refuse-nosymfollow" ] && [[ ,$opts, == *,nosymfollow,* ]]; then
    echo "mount.nfs4: an incorrect mount option was specified" >&2; exit 32
fi
server=${spec%%:*}
path=${spec#*:}
address=$(getent hosts "$server" | awk '{print $1; exit}')
if [ -z "$address" ]; then echo "mount.nfs4: Failed to resolve server $server: Name or service not known" >&2; exit 32; fi
# Like mount.nfs, retry a server that does not answer at once (ganesha under many clients).
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if nfs-ls "nfs://$address/?version=4" >/dev/null 2>&1; then break; fi
    if [ "$attempt" = 10 ]; then echo "mount.nfs4: Connection refused: $address did not answer for the export" >&2; exit 32; fi
    sleep 0.3
done
export_dir=$(awk -v a="$address" '$1 == a {print $2; exit}' @EXPORTS@)
if [ -z "$export_dir" ]; then echo "mount.nfs4: access denied by server while mounting $spec" >&2; exit 32; fi
mount --bind "$export_dir$path" "$dir"
# Generic per-mount flags take a remount on a bind mount (mount.nfs sets them at mount time).
flags=bind
for flag in ${opts//,/ }; do
    case $flag in nosymfollow|nosuid|nodev|noexec|ro) flags="$flags,$flag" ;; esac
done
if [ "$flags" != bind ]; then mount -o "remount,$flags" "$dir"; fi
"""


def mount_script(exports: Path, state: str) -> str:
    """The stand-in reading the server table ``exports`` and logging to ``state``/mount-standin.log (``state``
    is shell text: it may name $HOSTNAME)."""
    return MOUNT_SCRIPT.replace("@EXPORTS@", str(exports)).replace("@STATE@", state)


def exports_file(exports: dict[str, str]) -> str:
    """The server address -> exported directory table the stand-in reads."""
    return "".join(f"{address} {directory}\n" for address, directory in sorted(exports.items()))
