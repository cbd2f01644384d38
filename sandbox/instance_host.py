"""One emulated EC2 instance of an Elastic Beanstalk Docker environment, as a host on this machine.

An `InstanceHost` is a network namespace on the sandbox's bridge (sandbox/network.py) at its own address, with
its own mount, UTS and PID namespaces. It is started with `nsenter --net` (not `ip netns exec`, which remounts
/sys: dockerd then finds no devices cgroup). PID 1 is a small shell that mounts the host's private directories,
starts its services and reaps orphans; killing it ends every process of the host, and its mounts go with its
mount namespace. Inside:

- sshd on port 22: user `ec2-user` (uid 1000) with passwordless sudo, as on EB's Amazon Linux AMIs, whose
  authorized key is the EC2 key pair's public key; root may not log in.
- nginx laid out like the Docker platform's (`platform_agent.platform_nginx_files`): port 80 proxies to the
  upstream `docker`, which the deployment engine points at the container's first port.
- its own dockerd (data under the host's work directory; iptables on, so the chain our block-imds hook fills
  exists: DOCKER-USER-CHAIN), with `--insecure-registry` for each registry address given.
- the instance metadata service at 169.254.169.254 (sandbox/metadata.py), in a namespace linked only to this
  host, so that a container's request to it is forwarded by the host, as on EC2.
- `/etc/hosts` with the entries given (the VPC resolver's stand-in: EFS DNS name, RDS endpoint); the engine adds
  them to containers.
- `loopback_ports`: connections to 127.0.0.1:PORT inside the host reach 127.0.0.1:PORT of the machine (the
  registry behind the sandbox's ECR listens there; ECR's repository URIs name that address).

Private to the host (bind mounts over the machine's): /etc/nginx, /etc/hosts, /etc/passwd, /etc/group,
/etc/shadow, /etc/sudoers.d, /etc/systemd/system, /home, /root, /opt, /var/app, /var/log, /var/lib/nginx,
/usr/local/sbin, and a tmpfs /run. The rest of the file system is the machine's, read as it is.

The deployment engine (sandbox/platform_agent.py) runs inside with `deploy(manifest)` / `configure(manifest)`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import metadata, network, platform_agent, processes

REPO_ROOT = Path(__file__).resolve().parents[1]
EC2_USER = "ec2-user"
EC2_UID = 1000
IMDS_LINK_ADDRESS = "169.254.169.1"
PRIVATE_DIRS = {  # mount point inside the host -> directory under the host's work directory
    "/etc/nginx": "etc-nginx", "/etc/sudoers.d": "etc-sudoers.d", "/etc/systemd/system": "etc-systemd-system",
    "/home": "home", "/root": "root", "/opt": "opt", "/var/app": "var-app", "/var/log": "var-log",
    "/var/lib/nginx": "var-lib-nginx", "/usr/local/sbin": "usr-local-sbin",
}
PRIVATE_FILES = {"/etc/hosts": "etc-hosts", "/etc/passwd": "etc-passwd", "/etc/group": "etc-group",
                 "/etc/shadow": "etc-shadow"}

HOST_INIT = r"""#!/bin/bash
# PID 1 of an instance host: private mounts, then dockerd, nginx and sshd; reaps what is left to it.
set -euo pipefail
work=$1
hostname "$(cat "$work/hostname")"
mount -t tmpfs tmpfs /run
mkdir -p /run/sshd /run/lock
# Machine paths under a private directory that the engine needs (the Python running it), kept visible.
while read -r n path; do mkdir -p "$work/keep/$n"; mount --bind "$path" "$work/keep/$n"; done < "$work/keeps"
# An empty mount point the machine lacks (/var/app) is created on it: the one trace a host leaves.
while read -r point source; do
    [ -e "$point" ] || mkdir -p "$point"
    mount --bind "$work/$source" "$point"
done < "$work/mounts"
while read -r n path; do mkdir -p "$path"; mount --bind "$work/keep/$n" "$path"; done < "$work/keeps"
/usr/sbin/dockerd --config-file "$work/daemon.json" >>/var/log/docker.log 2>&1 &
nginx -g 'daemon off;' &
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>>/var/log/sshd.log &
echo ready > "$work/ready"
while :; do wait || true; sleep 1; done
"""

SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {host_key}
PidFile /run/sshd.pid
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
MaxStartups 100
LogLevel ERROR
Subsystem sftp internal-sftp
"""


@dataclass
class InstanceHost:
    """One instance host. `name` is its network namespace (prefixed like the bridge, at most 12 characters)."""

    bridge: network.Bridge
    name: str
    address: str
    instance_id: str
    workdir: Path
    public_key: str  # the EC2 key pair's public key, authorized for ec2-user
    region: str = "us-east-1"
    role_name: str | None = None
    instance_profile_arn: str | None = None
    credentials: metadata.Credentials | None = field(default=None, repr=False)
    hosts_entries: dict[str, str] = field(default_factory=dict)  # name -> address
    insecure_registries: list[str] = field(default_factory=list)
    loopback_ports: list[int] = field(default_factory=list)
    process: subprocess.Popen | None = field(default=None, repr=False)
    init_pid: int = 0

    def __post_init__(self):
        assert len(self.name) <= 12, self.name  # its metadata namespace is NAME-md
        self.metadata_namespace = f"{self.name}-md"
        self._metadata: metadata.MetadataService | None = None
        self._relays: list[socket.socket] = []

    # --- what the sandbox uses ----------------------------------------------------------------------------

    @property
    def docker_socket(self) -> Path:
        """The host's dockerd, reachable from the machine."""
        return self.workdir / "docker.sock"

    def run(self, command: str | list[str], check: bool = True, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command (argv) or a bash script (str) as root inside the host's namespaces."""
        argv = ["bash", "-c", command] if isinstance(command, str) else list(command)
        return network.run("nsenter", "-t", str(self.init_pid), "-m", "-u", "-n", "-p", "--", *argv,
                           check=check, timeout=timeout, input=input)

    def deploy(self, manifest: platform_agent.Manifest, timeout: float = 900) -> platform_agent.Result:
        """An application deployment on this host (the EB platform engine); the engine's Result."""
        return self._agent("deploy", manifest, timeout)

    def configure(self, manifest: platform_agent.Manifest, timeout: float = 300) -> platform_agent.Result:
        """A configuration deployment (new environment properties or secrets; confighooks)."""
        return self._agent("configure", manifest, timeout)

    def _agent(self, command: str, manifest: platform_agent.Manifest, timeout: float) -> platform_agent.Result:
        path = self.workdir / f"manifest-{secrets.token_hex(4)}.json"
        path.write_text(manifest.to_json())
        path.chmod(0o600)
        env = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
               "LANG=C.UTF-8", f"PYTHONPATH={REPO_ROOT}"]
        try:
            done = self.run([*env, sys.executable, "-m", "sandbox.platform_agent", command, str(path)],
                            check=False, timeout=timeout)
        finally:
            path.unlink(missing_ok=True)
        lines = done.stdout.strip().splitlines()
        try:
            return platform_agent.Result(**json.loads(lines[-1]))
        except (IndexError, ValueError, TypeError):
            error = platform_agent.DeploymentError("platform engine", f"the engine ended with {done.returncode}: "
                                                                      f"{done.stderr.strip()[-2000:]}")
            return platform_agent.Result(False, command, manifest.version_label, step=error.step,
                                         error=error.message, events=platform_agent.failure_events(error))

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> InstanceHost:
        """Bring the host up; ready when sshd, nginx and dockerd answer (about a second). A host that fails to
        come up is stopped (nothing of it is left) before the error is raised."""
        try:
            return self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> InstanceHost:
        self._prepare()
        self.bridge.add_namespace(self.name, self.address)
        self.bridge.add_private_link(self.name, f"{IMDS_LINK_ADDRESS}", self.metadata_namespace, metadata.ADDRESS)
        self._metadata = metadata.MetadataService(self.metadata_namespace, metadata.Identity(
            instance_id=self.instance_id, region=self.region, local_ipv4=self.address, role_name=self.role_name,
            instance_profile_arn=self.instance_profile_arn, credentials=self.credentials)).start()
        for port in self.loopback_ports:
            self._relays.append(_relay(self.name, port))
        self.process = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{self.name}", "unshare", "--mount", "--uts", "--pid", "--fork",
             "--mount-proc", "--propagation", "private", "bash", str(self.workdir / "host-init"), str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "init.log", "ab"), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} init exited: {(self.workdir / 'init.log').read_text()}")
            self.init_pid = self.init_pid or processes.first_child(self.process)
            if self.init_pid and (self.workdir / "ready").exists() and self._services_answer():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not come up in {timeout:.0f}s: {(self.workdir / 'init.log').read_text()}"
                           f"{self._tail('var-log/docker.log')}")

    def alive(self) -> bool:
        return bool(self.init_pid) and self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """The instance dies abruptly: every process of the host ends at once (its files and namespace stay
        until stop())."""
        processes.end_pid_namespace(self.init_pid, self.process)
        for relay in self._relays:
            relay.close()
        self._relays.clear()
        if self._metadata:
            self._metadata.stop()
            self._metadata = None

    def stop(self) -> None:
        """Everything gone: containers, processes, mounts, namespaces and the work directory."""
        if self.alive():
            self.run("docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1; "
                     "kill $(cat /run/docker.pid 2>/dev/null) 2>/dev/null; true", check=False, timeout=60)
        self.kill()
        self.init_pid = 0
        self.process = None
        for namespace in (self.name, self.metadata_namespace):
            network.kill_namespace_processes(namespace)
            self.bridge.remove_namespace(namespace)
        _unmount_under(self.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- inside --------------------------------------------------------------------------------------------

    def _prepare(self) -> None:
        work = self.workdir
        work.mkdir(parents=True, exist_ok=True)
        for sub in PRIVATE_DIRS.values():
            (work / sub).mkdir(exist_ok=True)
        for sub in ("var-log/nginx", "docker", "x"):
            (work / sub).mkdir(exist_ok=True)
        (work / "hostname").write_text(f"ip-{self.address.replace('.', '-')}\n")
        mounts = [f"{point} {sub}" for point, sub in {**PRIVATE_DIRS, **PRIVATE_FILES}.items()]
        (work / "mounts").write_text("\n".join(mounts) + "\n")
        (work / "keeps").write_text("".join(f"{n} {path}\n" for n, path in enumerate(kept_machine_paths())))
        (work / "host-init").write_text(HOST_INIT)
        self._nginx(work / "etc-nginx")
        self._users(work)
        self._sshd(work)
        (work / "etc-hosts").write_text(etc_hosts(self.address, f"ip-{self.address.replace('.', '-')}",
                                                  self.hosts_entries))
        (work / "daemon.json").write_text(json.dumps(dockerd_config(work, self.insecure_registries), indent=2))

    def _nginx(self, etc: Path) -> None:
        shutil.copy("/etc/nginx/mime.types", etc / "mime.types")
        for relative, text in platform_agent.platform_nginx_files().items():
            (etc / relative).parent.mkdir(parents=True, exist_ok=True)
            (etc / relative).write_text(text)

    def _users(self, work: Path) -> None:
        (work / "etc-passwd").write_text(
            _without_user(Path("/etc/passwd").read_text(), 2)
            + f"{EC2_USER}:x:{EC2_UID}:{EC2_UID}:EC2 Default User:/home/{EC2_USER}:/bin/bash\n")
        (work / "etc-group").write_text(_without_user(Path("/etc/group").read_text(), 2)
                                        + f"{EC2_USER}:x:{EC2_UID}:\n")
        shadow = work / "etc-shadow"
        shadow.write_text(_without_user(Path("/etc/shadow").read_text(), None) + f"{EC2_USER}:*:19000:0:99999:7:::\n")
        shadow.chmod(0o640)
        # As cloud-init writes it on EB's AMIs: ec2-user may sudo without a password.
        sudoers = work / "etc-sudoers.d" / "90-cloud-init-users"
        sudoers.write_text(f"{EC2_USER} ALL=(ALL) NOPASSWD:ALL\n")
        sudoers.chmod(0o440)
        ssh = work / "home" / EC2_USER / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        (ssh / "authorized_keys").write_text(self.public_key.strip() + "\n")
        for path in (ssh.parent, ssh, ssh / "authorized_keys"):
            os.chown(path, EC2_UID, EC2_UID)
        ssh.chmod(0o700)

    def _sshd(self, work: Path) -> None:
        key = work / "ssh_host_ed25519_key"
        if not key.exists():
            network.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        (work / "sshd_config").write_text(SSHD_CONFIG.format(address=self.address, host_key=key))

    def _services_answer(self) -> bool:
        if not (_answers(self.address, 22, b"SSH") and _answers(self.address, 80)):
            return False
        return self.docker_socket.exists() and self.run(["docker", "-H", f"unix://{self.docker_socket}", "version"],
                                                        check=False, timeout=10).returncode == 0

    def _tail(self, relative: str) -> str:
        path = self.workdir / relative
        return "\n" + path.read_text()[-2000:] if path.exists() else ""


def kept_machine_paths() -> list[Path]:
    """The Python that runs the engine (this one), where it lies under a directory private to a host (/root)."""
    candidates = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent,
                  REPO_ROOT}
    private = [Path(point) for point in PRIVATE_DIRS]
    under = {c for c in candidates if any(c == p or p in c.parents for p in private)}
    return sorted(c for c in under if not any(other in c.parents for other in under))


def etc_hosts(address: str, hostname: str, entries: dict[str, str]) -> str:
    lines = ["127.0.0.1 localhost", f"{address} {hostname}"]
    lines += [f"{entry_address} {name}" for name, entry_address in sorted(entries.items())]
    return "\n".join(lines) + "\n"


def dockerd_config(work: Path, insecure_registries: list[str]) -> dict:
    """dockerd's settings: data and exec roots under the host's work directory (the exec root short: containerd's
    socket path is limited to 108 bytes), default bridge and iptables as on an instance."""
    return {"data-root": str(work / "docker"), "exec-root": str(work / "x"), "pidfile": "/run/docker.pid",
            "hosts": ["unix:///var/run/docker.sock", f"unix://{work / 'docker.sock'}"],
            "storage-driver": "overlay2", "insecure-registries": list(insecure_registries)}


def _without_user(text: str, uid_field: int | None) -> str:
    """An account file without ec2-user or another account with its uid (this machine's uid 1000)."""
    kept = []
    for line in text.splitlines():
        fields = line.split(":")
        if fields[0] == EC2_USER or (uid_field is not None and len(fields) > uid_field
                                     and fields[uid_field] == str(EC2_UID)):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def _answers(address: str, port: int, banner: bytes | None = None) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5) as sock:
            return banner is None or sock.recv(len(banner)).startswith(banner)
    except OSError:
        return False


def _relay(namespace: str, port: int) -> socket.socket:
    """Accept on 127.0.0.1:port inside `namespace`; pipe each connection to 127.0.0.1:port of this machine."""
    listener = network.listening_socket(namespace, "127.0.0.1", port)

    def pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve() -> None:
        while True:
            try:
                inside, _ = listener.accept()
            except OSError:
                return  # closed by kill()/stop()
            try:
                outside = socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            for a, b in ((inside, outside), (outside, inside)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, name=f"relay-{namespace}-{port}", daemon=True).start()
    return listener


def _unmount_under(root: Path) -> None:
    prefix = str(root).rstrip("/") + "/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if line.split()[4].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
