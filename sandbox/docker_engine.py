"""A private Docker engine: Debian's dockerd on its own socket, data root and exec root.

The tests start one per session and `inv sandbox` one for its builds, each under a temporary directory, so
nothing leaks between runs and another dockerd on this machine is never touched. It is stopped by PID.

The engine is started with no default bridge and without touching iptables: on a shared machine
dockerd would otherwise add `docker0`, turn on ip_forward and set the FORWARD policy to DROP, which
breaks other tests' network namespaces. Builds and containers therefore use the host network
(`network_mode="host"`); the services listen on the ports the rendered config gives them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DOCKERD = "/usr/sbin/dockerd"
# Debian's CLI (20.10) can build with BuildKit secrets; /usr/local/bin/docker (28.x) cannot.
DEBIAN_DOCKER_CLI = "/usr/bin/docker"
READY_TIMEOUT = 60.0


@dataclass
class DockerEngine:
    root: Path
    socket: Path
    pid: int
    process: subprocess.Popen = field(repr=False)
    log: Path = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        """Variables that point the docker SDK and CLI at this engine (and a private CLI config)."""
        return {"DOCKER_HOST": self.base_url, "DOCKER_CONFIG": str(self.root / "cli-config")}

    def client(self):
        import docker

        # version="auto": let the SDK negotiate; this dockerd speaks API 1.41.
        return docker.DockerClient(base_url=self.base_url, version="auto", timeout=600)

    def cli(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Run Debian's docker CLI against this engine."""
        env = {**os.environ, **self.env(), **kwargs.pop("env", {})}
        return subprocess.run([DEBIAN_DOCKER_CLI, *args], env=env, check=check, capture_output=True, text=True, **kwargs)


def start_engine(root: Path, insecure_registries: tuple[str, ...] = ()) -> DockerEngine:
    """Start dockerd under root (must be short: containerd's socket path is limited to 108 bytes); it may pull
    from and push to ``insecure_registries`` (host:port) over plain HTTP."""
    if not Path(DOCKERD).exists():
        raise RuntimeError(f"{DOCKERD} is missing: apt-get install docker.io (listed in tests/system-packages.txt)")
    for sub in ("data", "exec", "cli-config"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    socket = root / "docker.sock"
    config = root / "daemon.json"
    config.write_text("{}\n")  # ignore any /etc/docker/daemon.json on the machine
    log = root / "dockerd.log"
    args = [
        DOCKERD,
        "--config-file", str(config),
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"),
        "-H", f"unix://{socket}",
        "--storage-driver=overlay2",
        "--bridge=none",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        *(f"--insecure-registry={registry}" for registry in insecure_registries),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    engine = DockerEngine(root=root, socket=socket, pid=process.pid, process=process, log=log)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dockerd exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if socket.exists():
            try:
                client = engine.client()
                client.ping()
                client.close()
                return engine
            except Exception:  # not answering yet
                pass
        time.sleep(0.2)
    stop_engine(engine)
    raise RuntimeError(f"dockerd did not answer on {socket} within {READY_TIMEOUT:.0f}s:\n{log.read_text()[-3000:]}")


def stop_engine(engine: DockerEngine) -> None:
    """Remove every container, then stop dockerd (and the containerd it started) by PID and reap it."""
    try:
        client = engine.client()
        for container in client.containers.list(all=True):
            container.remove(force=True)
        client.close()
    except Exception:
        pass
    if engine.process.poll() is None:
        engine.process.send_signal(signal.SIGTERM)
        try:
            engine.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.process.kill()
            engine.process.wait(timeout=10)
    # dockerd leaves its default netns mount (and overlays after a crash); unmount deepest first.
    for mount_point in sorted(_mounts_under(engine.root), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount_point], capture_output=True)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    return points
