"""Test hosts standing in for Elastic Beanstalk instances, with "EFS" and app containers.

Each host is a network namespace on our bridge plus its own mount, UTS and PID namespaces
(`ip netns exec NS unshare --mount --uts --pid --fork --mount-proc --propagation private`).
Inside it: its own /etc/nginx, /var/log/nginx, /var/lib/nginx, /etc/fstab, /etc/hosts, /mnt
(the mount point's parent), /root (an instance's clean home, not this machine's) and a tmpfs /run; a real nginx and a real sshd that Fabric logs in to.
The namespace's PID 1 is a small shell that reaps orphans; killing it ends every process of the
host, and its mounts go with it.

What stands in for what, said plainly:
- mount.nfs4 (MOUNT_STANDIN): the kernel has no NFS client. Inside each host's mount namespace
  only, /sbin/mount.nfs is bind-mounted over by a script that logs its options, checks with
  nfs-ls that the NFSv4 server (nfs-ganesha, tests/support/nfs.py) answers for the export,
  then bind-mounts the exported directory at the mount point. /etc/hosts maps the EFS DNS
  name to ganesha, so the name resolution is real.
- docker (DOCKER_STANDIN): dockerd is not needed for this. The "app container" of host N is a
  real HTTP server (tests/support/app_standin.py) in the `sifurm-apps` namespace at its own
  address. The stand-in CLI answers exactly the docker calls converge makes (ps, inspect of
  the image and address, the bind mounts and the limits, exec cat, restart, update of the limits) from files in
  the host's state directory, and `inv status`'s `exec -u 0 ID python -m sifu.usage /notebooks` by running the real
  sifu.usage (this checkout) on the container's view of the notebook root and the host's own /proc. `update`
  checks its values as dockerd does (numbers; swap not below memory) and keeps them in container/limits, which
  `inspect` then shows in docker's format ("0 0 <nil>" until the first update).
  Like a real container with a private bind mount, it keeps seeing what was at the mount
  point when it (re)started: `exec cat /notebooks/...` reads the instance disk until a
  restart after the mount.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import processes
from sandbox import nfs_client
from tests.support.netns import BRIDGE_ADDRESS, PREFIX, SUBNET, Bridge, run
from tests.support.nfs import Ganesha

EFS_ADDRESS = f"{SUBNET}.2"
APPS_NAMESPACE = f"{PREFIX}-apps"
# The app container is found by our own label (the Dockerfile's LABEL sifu.role=app), never by a name the
# platform gives its image; the stand-in's image is a made-up local reference with a made-up id.
APP_LABEL = "sifu.role=app"
APP_IMAGE = "sifu-testbed/app:current"
APP_IMAGE_ID = "sha256:" + "5f" * 32
FIRST_HOST = 11
FIRST_APP = 101
MAX_HOSTS = 80
REPO = Path(__file__).resolve().parents[2]

# The sandbox's stand-in for the kernel's NFS client (sandbox/nfs_client.py), logging to each host's state dir.
MOUNT_STANDIN = nfs_client.mount_script(Path("@BED@/nfs-exports"), "@BED@/hosts/$HOSTNAME")

DOCKER_STANDIN = r"""#!/bin/bash
# TEST STAND-IN for the docker CLI on a test host: answers the calls converge makes about the
# app container, which is a real HTTP server in the sifurm-apps namespace. See tests/support/hosts.py.
# (Bash builtins only where possible: 16 hosts share this machine's 2 cores in the benchmark.)
set -euo pipefail
state=@BED@/hosts/$HOSTNAME
c=$state/container
id=$(<"$c/id")
echo "docker $*" >> "$state/docker.log"
case ${1:-} in
ps)
    filter=""; all=""
    while [ $# -gt 0 ]; do case $1 in --filter) filter=$2; shift 2 ;; -a) all=1; shift ;; --format) shift 2 ;; *) shift ;; esac; done
    if [ -z "$filter" ] || [ "$filter" = "label=$(<"$c/label")" ]; then
        # container/others: ids of more containers with the same label (one per line), to test "not exactly one".
        if [ -e "$c/running" ] || [ -n "$all" ]; then echo "$id"; fi
        if [ -e "$c/others" ]; then cat "$c/others"; fi
    fi ;;
image)
    # docker image inspect -f {{.Id}} REF: the id of a local image (images file: "REF ID" lines).
    ref=$5
    line=$(grep -F -- "$ref " "$state/images" 2>/dev/null | head -n 1 || true)
    if [ -z "$line" ]; then echo "Error: No such image: $ref" >&2; exit 1; fi
    echo "${line#* }" ;;
inspect)
    format=$3; which=$4
    if [ "$which" != "$id" ] || [ ! -e "$c/running" ]; then echo "Error: No such object: $which" >&2; exit 1; fi
    case $format in
    "{{.Image}} {{.HostConfig.Memory}} "*IPAddress*) echo "$(<"$c/image-id") $(<"$c/limits") $(<"$c/address")" ;;
    "{{.Image}} "*IPAddress*) echo "$(<"$c/image-id") $(<"$c/address")" ;;
    *IPAddress*) echo "$(<"$c/address")" ;;
    "{{.Image}}") echo "$(<"$c/image-id")" ;;
    *Mounts*) echo "$(<"$c/mount-source")" ;;
    "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}") echo "$(<"$c/limits")" ;;
    *) echo "docker stand-in: format not supported: $format" >&2; exit 2 ;;
    esac ;;
exec)
    # What the container's /notebooks shows: the volume after a restart that followed the mount, else its own disk.
    if [ "$(<"$c/view")" = volume ]; then notebooks=$(<"$c/mount-source"); else notebooks=$c/disk; fi
    if [ "${*:2}" = "-u 0 $id python -m sifu.usage /notebooks" ]; then
        # `inv status`: the real sifu.usage (this checkout; stdlib only, so the host's python3), as root, on the
        # container's view of the notebook root and this host's own /proc (its PID namespace: its processes only).
        PYTHONPATH=@REPO@ exec python3 -m sifu.usage "$notebooks"
    fi
    which=$2
    if [ "$which" != "$id" ] || [ "$3" != cat ]; then echo "docker stand-in: only 'exec $id cat FILE' and sifu.usage are supported" >&2; exit 2; fi
    file=${4#/notebooks/}
    file="$notebooks/$file"
    if [ ! -e "$file" ]; then echo "cat: $4: No such file or directory" >&2; exit 1; fi
    echo "$(<"$file")" ;;
logs)
    # docker logs --tail N ID: the container's log (written by tests into container/log), last N lines.
    which=${4:-}
    if [ "$which" != "$id" ]; then echo "Error: No such container: $which" >&2; exit 1; fi
    tail -n "$3" "$c/log" 2>/dev/null || true ;;
update)
    # docker update --memory B --memory-swap B --pids-limit N ID (converge's only form).
    memory=""; swap=""; pids=""; which=""
    while [ $# -gt 1 ]; do case $2 in --memory) memory=$3; shift 2 ;; --memory-swap) swap=$3; shift 2 ;;
        --pids-limit) pids=$3; shift 2 ;; *) which=$2; shift ;; esac; done
    if [ "$which" != "$id" ] || [ ! -e "$c/running" ]; then echo "Error: No such container: $which" >&2; exit 1; fi
    if ! [[ $memory =~ ^[0-9]+$ && $swap =~ ^[0-9]+$ && $pids =~ ^[0-9]+$ ]]; then echo "invalid argument" >&2; exit 125; fi
    if [ "$swap" -lt "$memory" ]; then
        echo "Error response from daemon: Cannot update container $id: Minimum memoryswap limit should be larger than memory limit, see usage" >&2; exit 1
    fi
    echo "$memory $swap $pids" > "$c/limits"
    echo "$which" ;;
restart)
    echo "$EPOCHREALTIME restart $2" >> "$state/restarts.log"
    if mountpoint -q "$(<"$c/mount-source")"; then echo volume > "$c/view"; else echo disk > "$c/view"; fi
    echo "$2" ;;
*)
    echo "docker stand-in: not supported: $*" >&2; exit 2 ;;
esac
"""

HOST_INIT = r"""#!/bin/bash
# PID 1 of a test host: private mounts, nginx, then sshd (restarted unless ssh-down exists).
set -euo pipefail
root=$1
hostname "$(cat "$root/name")"
mount -t tmpfs tmpfs /run
mkdir -p /run/sshd
mount --bind "$root/etc-nginx" /etc/nginx
mount --bind "$root/log-nginx" /var/log/nginx
mount --bind "$root/lib-nginx" /var/lib/nginx
mount --bind "$root/fstab" /etc/fstab
mount --bind "$root/etc-hosts" /etc/hosts
mount --bind "$root/mnt" /mnt
mount --bind "$root/home-root" /root
mount --bind "$root/../../bin/mount.nfs" /sbin/mount.nfs
mount --bind "$root/../../bin/local" /usr/local/bin
mount --bind "$root/sbin-local" /usr/local/sbin
mount --bind "$root/systemd-system" /etc/systemd/system
nginx -g 'daemon off;' &
echo ready > "$root/ready"
while :; do
    if [ -e "$root/ssh-down" ]; then sleep 0.2; continue; fi
    /usr/sbin/sshd -D -e -f "$root/sshd_config" 2>>"$root/sshd.log" &
    echo $! > "$root/sshd.pid"
    wait $! || true
done
"""

SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {host_key}
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AuthorizedKeysFile {authorized_keys}
UseDNS no
PrintMotd no
MaxStartups 200
MaxSessions 50
LogLevel ERROR
Subsystem sftp internal-sftp
"""

NGINX_CONF = """\
user root;
worker_processes 1;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    access_log /var/log/nginx/access.log;
    include /etc/nginx/conf.d/*.conf;
    server {
        listen 80 default_server;
        location / { return 200 "no app yet\\n"; }
    }
}
"""


@dataclass
class Host:
    bed: TestBed
    index: int
    name: str
    address: str
    app_address: str
    root: Path
    process: subprocess.Popen | None = None
    init_pid: int = 0

    # --- inside the host -----------------------------------------------------------------------

    def run(self, script: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a bash script inside this host's namespaces (as its root, not over SSH)."""
        return run("nsenter", "-t", str(self.init_pid), "-m", "-u", "-n", "-p", "--", "bash", "-c", script,
                   check=check, timeout=timeout)

    def read(self, path: str) -> str:
        return self.run(f"cat {path}").stdout

    def mounted_source(self, mount_point: str) -> str:
        return self.run(f"findmnt -n -r -o SOURCE,FSTYPE --mountpoint {mount_point} || true").stdout.strip()

    @property
    def state(self) -> Path:
        return self.root

    def restarts(self) -> list[str]:
        log = self.root / "restarts.log"
        return log.read_text().splitlines() if log.exists() else []

    def docker_calls(self, verb: str) -> list[str]:
        """The docker stand-in's calls of one verb (update, restart, ...), as their command lines."""
        log = self.root / "docker.log"
        return [line for line in log.read_text().splitlines() if line.split()[1:2] == [verb]] if log.exists() else []

    def mount_log(self) -> list[str]:
        log = self.root / "mount-standin.log"
        return log.read_text().splitlines() if log.exists() else []

    def nginx_reloads(self) -> int:
        """How many times nginx re-read its configuration (from its error log at notice level)."""
        log = self.root / "log-nginx" / "error.log"
        return log.read_text().count("reconfiguring") if log.exists() else 0

    def deploy_bundle(self, tree) -> subprocess.CompletedProcess:
        """Stand-in for Elastic Beanstalk deploying a bundle's platform parts to this instance: run the prebuild
        hooks (as root, in name order), then install .platform/nginx/conf.d/*.conf into /etc/nginx/conf.d and
        reload nginx after `nginx -t` (as EB's proxy setup does). The postdeploy hooks are the tests' to run."""
        prefix = "bundle/.platform/"
        for path, f in tree.files.items():
            if path.startswith(prefix + "hooks/prebuild/") or path.startswith(prefix + "nginx/conf.d/"):
                target = self.root / "bundle" / path[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f.content)
                target.chmod(f.mode)
        bundle = self.root / "bundle"
        return self.run(f"set -e; for hook in {bundle}/hooks/prebuild/*; do [ -e \"$hook\" ] && \"$hook\"; done; "
                        f"cp {bundle}/nginx/conf.d/*.conf /etc/nginx/conf.d/ && nginx -t 2>&1 && nginx -s reload", check=False)

    # --- lifecycle -------------------------------------------------------------------------------

    def prepare(self) -> None:
        for sub in ("etc-nginx/conf.d", "log-nginx", "lib-nginx", "mnt", "home-root", "container/disk", "sbin-local",
                    "systemd-system", "bundle"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "name").write_text(self.name)
        shutil.copy("/etc/nginx/mime.types", self.root / "etc-nginx" / "mime.types")
        # Notice level so reloads are visible in the log ("reconfiguring").
        (self.root / "etc-nginx" / "nginx.conf").write_text(NGINX_CONF.replace("error.log;", "error.log notice;", 1))
        (self.root / "fstab").write_text("# /etc/fstab of test host\n")
        (self.root / "etc-hosts").write_text(
            f"127.0.0.1 localhost\n{self.address} {self.name}\n{EFS_ADDRESS} {' '.join(self.bed.efs_names)}\n")
        (self.root / "sshd_config").write_text(SSHD_CONFIG.format(
            address=self.address, host_key=self.bed.host_key, authorized_keys=self.bed.authorized_keys))
        c = self.root / "container"
        (c / "id").write_text(f"c0ffee{self.index:06d}\n")
        (c / "label").write_text(APP_LABEL)
        (c / "image-id").write_text(APP_IMAGE_ID + "\n")
        (self.root / "images").write_text(f"{APP_IMAGE} {APP_IMAGE_ID}\n")
        (c / "address").write_text(self.app_address + "\n")
        (c / "mount-source").write_text(f"{self.bed.mount_point}\n")
        (c / "view").write_text("disk\n")  # started before any volume was mounted
        (c / "running").write_text("")
        (c / "limits").write_text("0 0 <nil>\n")  # as docker inspect shows a container started without limits

    def start(self, timeout: float = 20) -> None:
        for leftover in ("ready", "ssh-down"):
            (self.root / leftover).unlink(missing_ok=True)
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.name, "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc",
             "--propagation", "private", "bash", str(self.bed.dir / "bin" / "host-init"), str(self.root)],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "init.log", "ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} init exited: {(self.root / 'init.log').read_text()}")
            self.init_pid = self.init_pid or processes.first_child(self.process)
            if self.init_pid and (self.root / "ready").exists() and self.ssh_answers():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not come up: {(self.root / 'init.log').read_text()}")

    def ssh_answers(self) -> bool:
        import socket

        try:
            with socket.create_connection((self.address, 22), timeout=0.5) as sock:
                return sock.recv(4).startswith(b"SSH")
        except OSError:
            return False

    def stop_ssh(self) -> None:
        """The host stops answering SSH (connection refused); nginx keeps running."""
        (self.root / "ssh-down").write_text("")
        pid = int((self.root / "sshd.pid").read_text())
        self.run(f"kill {pid}", check=False)
        deadline = time.monotonic() + 10
        while self.ssh_answers() and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_ssh(self) -> None:
        (self.root / "ssh-down").unlink(missing_ok=True)
        deadline = time.monotonic() + 10
        while not self.ssh_answers() and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        processes.end_pid_namespace(self.init_pid, self.process)  # PID 1 of the host: all its processes end
        self.init_pid = 0
        self.process = None

    def reset(self) -> None:
        """Back to a fresh host: stop it, wipe its files, start it again (the shared volume is kept)."""
        self.stop()
        shutil.rmtree(self.root)
        self.prepare()
        self.start()


@dataclass
class TestBed:
    """A bridge, ganesha as EFS, the app stand-ins and N hosts. Use as a context manager."""

    hosts_wanted: int
    file_system_id: str = "fs-0123456789abcdef0"
    region: str = "us-east-1"
    mount_point: str = "/mnt/efs"
    ports: tuple[int, int] = (3334, 3335)
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sifurm-bed-")))
    hosts: list[Host] = field(default_factory=list)

    def __post_init__(self):
        assert 1 <= self.hosts_wanted <= MAX_HOSTS
        self.bridge = Bridge()
        self.ganesha: Ganesha | None = None
        self.apps: subprocess.Popen | None = None

    @property
    def efs_names(self) -> list[str]:
        from deployer.remote.commands import efs_dns_name

        return [efs_dns_name(self.file_system_id, self.region)]

    @property
    def addresses(self) -> list[str]:
        return [h.address for h in self.hosts]

    def __enter__(self) -> TestBed:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> None:
        for sub in ("bin/local", "hosts", "ssh"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._keys()
        self._scripts()
        self.bridge.up()
        self.ganesha = Ganesha(self.bridge, self.dir, f"{PREFIX}-efs", EFS_ADDRESS).start()
        (self.dir / "nfs-exports").write_text(nfs_client.exports_file({EFS_ADDRESS: str(self.ganesha.export)}))
        self.hosts = []
        for i in range(self.hosts_wanted):
            n = i + 1
            host = Host(self, n, f"{PREFIX}-h{n}", f"{SUBNET}.{FIRST_HOST + i}", f"{SUBNET}.{FIRST_APP + i}",
                        self.dir / "hosts" / f"{PREFIX}-h{n}")
            self.bridge.add_namespace(host.name, host.address)
            host.prepare()
            self.hosts.append(host)
        self._start_apps()
        for host in self.hosts:
            host.start()

    def _keys(self) -> None:
        ssh = self.dir / "ssh"
        self.host_key = ssh / "host_ed25519"
        self.client_key = ssh / "client_ed25519"
        for key in (self.host_key, self.client_key):
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        self.authorized_keys = ssh / "authorized_keys"
        shutil.copy(f"{self.client_key}.pub", self.authorized_keys)

    def _scripts(self) -> None:
        bin_dir = self.dir / "bin"
        for name, text in (("mount.nfs", MOUNT_STANDIN), ("local/docker", DOCKER_STANDIN), ("host-init", HOST_INIT)):
            path = bin_dir / name
            path.write_text(text.replace("@BED@", str(self.dir)).replace("@REPO@", shlex.quote(str(REPO))))
            path.chmod(0o755)

    def _start_apps(self) -> None:
        """One process serving every host's "app container" address on both ports."""
        self.bridge.add_namespace(APPS_NAMESPACE, f"{SUBNET}.{FIRST_APP - 1}")
        for host in self.hosts:
            run("ip", "netns", "exec", APPS_NAMESPACE, "ip", "addr", "add", f"{host.app_address}/32", "dev", "eth0")
        listen = [f"{h.app_address}:{port}" for h in self.hosts for port in self.ports]
        ready = self.dir / "apps.ready"
        self.apps = subprocess.Popen(
            ["ip", "netns", "exec", APPS_NAMESPACE, sys.executable, str(Path(__file__).with_name("app_standin.py")),
             str(ready), *listen], stdout=subprocess.DEVNULL, stderr=open(self.dir / "apps.log", "ab"))
        deadline = time.monotonic() + 20
        while not ready.exists():
            if self.apps.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app stand-in did not start: {(self.dir / 'apps.log').read_text()}")
            time.sleep(0.1)

    def down(self) -> None:
        for host in self.hosts:
            host.stop()
        if self.apps and self.apps.poll() is None:
            self.apps.terminate()
            try:
                self.apps.wait(10)
            except subprocess.TimeoutExpired:
                self.apps.kill()
                self.apps.wait(5)
        if self.ganesha:
            self.ganesha.stop()
        self.bridge.down()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- what tests need ----------------------------------------------------------------------------

    def settings(self, **overrides):
        """Deployer settings pointing at this bed (root over SSH with the bed's key)."""
        from deployer.config import load

        environ = {
            "DEPLOY__SSH__USER": "root",
            "DEPLOY__SSH__KEY_FILE": str(self.client_key),
            "DEPLOY__SSH__CONNECT_TIMEOUT": "5",
            "DEPLOY__EFS__FILE_SYSTEM_ID": self.file_system_id,
            "DEPLOY__EFS__MOUNT_POINT": self.mount_point,
            "DEPLOY__REMOTE__CONTAINER_WAIT": "5",
            "OVERRIDES": str(self._empty_overrides()),
        }
        environ.update({f"DEPLOY__{k.upper().replace('.', '__')}": str(v) for k, v in overrides.items()})
        return load(environ=environ).settings, environ

    def deploy_bundle(self, *hosts: Host, environ: dict[str, str] | None = None, **overrides) -> None:
        """As Elastic Beanstalk would before the postdeploy hooks: the bundle's prebuild hooks, then its nginx files.
        The bundle is rendered from this bed's settings with overrides, or from a deploy's whole environ."""
        from deployer import render
        from deployer.config import load

        s = load(environ=environ).settings if environ is not None else self.settings(**overrides)[0]
        tree = render.render_all(s, render.Facts(file_system_id=self.file_system_id, offline=False), validate=False)
        for host in hosts:
            done = host.deploy_bundle(tree)
            if done.returncode != 0:
                raise RuntimeError(f"{host.name}: deploying the bundle failed: {done.stdout}{done.stderr}")

    def _empty_overrides(self) -> Path:
        path = self.dir / "overrides.yml"
        if not path.exists():
            path.write_text("{}\n")
        return path

    @property
    def export(self) -> Path:
        assert self.ganesha
        return self.ganesha.export

    def wipe_export(self) -> None:
        for child in self.export.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()


def curl(address: str, port: int, path: str = "/", timeout: float = 5) -> tuple[int, str]:
    """GET from the root namespace (outside every host); (status, body), status 0 when nothing answered."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)  # nothing answered


__all__ = ["TestBed", "Host", "curl", "BRIDGE_ADDRESS"]


# h1-h5 belong to the converge tests (they reset them); the deploy tests' instance is h6.
DEPLOY_HOST = 5


# --- pytest fixtures (pulled in by a conftest.py: `from tests.support.hosts import remote_bed`) ---------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def remote_bed():
    """Six fresh test hosts (sifurm-h1..h6), ganesha as EFS at 10.231.0.2, app stand-ins; needs root."""
    if os.geteuid() != 0:
        pytest.skip("the host test bed needs root (network and mount namespaces)")
    for tool in ("sshd", "nginx", "ganesha.nfsd", "nfs-ls", "nsenter"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.skip(f"{tool} is not installed (see tests/system-packages.txt)")
    with TestBed(6) as bed:
        yield bed
