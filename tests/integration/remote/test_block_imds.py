"""The bundle's IMDS hook (.platform/hooks/prebuild/05-block-imds.sh) on an instance with its own Docker engine.

The "instance" is a network namespace running its own dockerd (default bridge, iptables on, as on Elastic
Beanstalk; MACHINE.md: "An instance with its own Docker engine"). The metadata service is an HTTP server on
169.254.169.254 in a second namespace behind the instance, as on EC2 where it is off the instance: so a
container's request is forwarded (FORWARD, where DOCKER-USER sits) while the instance's own request is not.
The hook runs as root in the instance's namespaces, in a private mount namespace whose /usr/local/sbin,
/etc/systemd/system and /run are its own (it installs a copy of itself and a systemd unit there).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from deployer import render
from tests.support.base_image import IMAGE, import_base
from tests.support.docker_engine import DOCKERD, DockerEngine, stop_engine
from tests.support.netns import PREFIX, run

pytestmark = pytest.mark.integration
INSTANCE, IMDS = f"{PREFIX}-ih", f"{PREFIX}-im"
IMDS_ADDRESS = "169.254.169.254"
HOOK = f"bundle/.platform/hooks/prebuild/{render.registry.IMDS_HOOK_NAME}"
# From inside a container: does a TCP connection to the metadata service open?
PROBE = f"if (exec 3<>/dev/tcp/{IMDS_ADDRESS}/80) 2>/dev/null; then echo open; else echo refused; fi"


def _netns(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return run("ip", "netns", "exec", *argv, **kwargs)


@pytest.fixture(scope="module")
def instance():
    """(engine, state dir): the instance namespace with dockerd and localbase, the metadata stand-in behind it."""
    if shutil.which("iptables") is None or not Path(DOCKERD).exists():
        pytest.skip("needs iptables and dockerd")
    for name in (INSTANCE, IMDS):
        run("ip", "netns", "del", name, check=False)
    root = Path(tempfile.mkdtemp(prefix="sifu-im-", dir="/tmp"))
    server = engine = None
    try:
        run("ip", "netns", "add", INSTANCE)
        run("ip", "netns", "add", IMDS)
        run("ip", "link", "add", "imds0", "netns", INSTANCE, "type", "veth", "peer", "name", "eth0", "netns", IMDS)
        _netns(INSTANCE, "ip", "addr", "add", "169.254.169.1/24", "dev", "imds0")
        _netns(IMDS, "ip", "addr", "add", f"{IMDS_ADDRESS}/24", "dev", "eth0")
        for ns, dev in ((INSTANCE, "imds0"), (INSTANCE, "lo"), (IMDS, "eth0"), (IMDS, "lo")):
            _netns(ns, "ip", "link", "set", dev, "up")
        server = subprocess.Popen(["ip", "netns", "exec", IMDS, sys.executable, "-m", "http.server", "--bind",
                                   IMDS_ADDRESS, "80"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine = _start_dockerd(root)
        client = engine.client()
        import_base(client)
        client.close()
        yield engine, root
    finally:
        if engine:
            stop_engine(engine)
        if server:
            server.terminate()
            server.wait(10)
        for name in (INSTANCE, IMDS):
            run("ip", "netns", "del", name, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _start_dockerd(root: Path) -> DockerEngine:
    for sub in ("data", "exec", "cli-config"):
        (root / sub).mkdir()
    (root / "daemon.json").write_text("{}\n")
    socket, log = root / "docker.sock", root / "dockerd.log"
    # nsenter, not `ip netns exec` (which remounts /sys: dockerd then finds no devices cgroup).
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{INSTANCE}", DOCKERD, "--config-file", str(root / "daemon.json"),
             "--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"),
             "-H", f"unix://{socket}", "--storage-driver=overlay2"], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    engine = DockerEngine(root=root, socket=socket, pid=process.pid, process=process, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dockerd exited {process.returncode}: {log.read_text()[-2000:]}")
        if socket.exists() and engine.cli("version", check=False).returncode == 0:
            return engine
        time.sleep(0.3)
    stop_engine(engine)
    raise RuntimeError(f"dockerd did not start: {log.read_text()[-2000:]}")


def _from_container(engine: DockerEngine) -> str:
    return engine.cli("run", "--rm", IMAGE, "bash", "-c", PROBE, timeout=120).stdout.strip()


def _from_instance() -> str:
    return _netns(INSTANCE, "bash", "-c", PROBE).stdout.strip()


def _run_hook(root: Path, hook: Path) -> subprocess.CompletedProcess:
    """As Elastic Beanstalk runs a hook: as root on the instance (here: its namespace, private install dirs)."""
    for sub in ("sbin", "systemd"):
        (root / sub).mkdir(exist_ok=True)
    script = (f"mount -t tmpfs tmpfs /run && mount --bind {root}/sbin /usr/local/sbin && "
              f"mount --bind {root}/systemd /etc/systemd/system && exec {hook}")
    return run("nsenter", f"--net=/var/run/netns/{INSTANCE}", "unshare", "--mount", "--propagation", "private",
               "bash", "-c", script, check=False, timeout=60)


def test_containers_cannot_reach_the_metadata_service_the_instance_can(instance):
    engine, root = instance
    # Before the hook: a container reaches the metadata service (the hole the hook closes).
    assert _from_container(engine) == "open"
    assert _from_instance() == "open"

    tree = render.render_all(_settings(), render.Facts(), validate=False)
    hook = root / "05-block-imds.sh"
    hook.write_text(tree.files[HOOK].content)
    hook.chmod(tree.files[HOOK].mode)
    first = _run_hook(root, hook)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "block-imds\tiptables\tchanged: rejecting 169.254.169.254/32" in first.stdout

    assert _from_container(engine) == "refused"
    assert _from_instance() == "open"  # the instance's own processes (EB agent, efs-utils) still reach it

    # Run again (the confighooks twin, a redeploy, the systemd unit): nothing added twice.
    rules = _netns(INSTANCE, "iptables", "-S", "DOCKER-USER").stdout
    again = _run_hook(root, hook)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed" not in again.stdout, again.stdout
    assert _netns(INSTANCE, "iptables", "-S", "DOCKER-USER").stdout == rules
    assert rules.count(f"-d {IMDS_ADDRESS}/32 -j REJECT") == 1
    # ip6tables: the rule when this kernel has IPv6 filtering, else skipped without failing the hook.
    assert ("ip6tables\tchanged: rejecting fd00:ec2::254/128" in first.stdout
            or "ip6tables\tskipped" in first.stdout), first.stdout
    # The copy and the unit that bring the rules back after a reboot or a Docker restart.
    assert (root / "sbin" / "sifu-block-imds").read_text() == hook.read_text()
    unit = (root / "systemd" / "sifu-block-imds.service").read_text()
    assert "ExecStart=/usr/local/sbin/sifu-block-imds" in unit and "After=docker.service" in unit
    assert "enable\tskipped: systemd is not running here" in first.stdout


def _settings():
    from deployer.config import load

    return load(environ={"DEPLOY__EFS__FILE_SYSTEM_ID": "fs-0123456789abcdef0"}, overrides_file=None).settings
