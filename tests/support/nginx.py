"""Real nginx in a scratch prefix, serving our rendered vhosts."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path

from deployer import render
from tests.support.processes import running


def write_site(prefix: Path, settings, upstream_address: str, upstream_ports: dict[str, int] | None = None,
               vhost_transform=lambda text: text, peers: bool = False) -> Path:
    """Render the vhosts and upstream into prefix and return its nginx.conf. `peers`: Jupyter's vhost also
    listens on ports.peer and follows the instance cookie (only where nothing else may hold that port)."""
    logs = prefix / "logs"
    (logs / "healthd").mkdir(parents=True, exist_ok=True)
    files = []
    upstream = render.upstream_context(settings, upstream_address)
    for item in upstream["upstreams"]:
        service = item["name"].removeprefix("sifu_").removesuffix("_app")
        if upstream_ports:
            item["port"] = upstream_ports[service]
    path = prefix / "upstream.conf"
    path.write_text(render.render_template(".nginx/upstream.conf.j2", upstream))
    files.append(path)
    for service in render.SERVICES:
        text = render.render_template(".nginx/vhost.conf.j2", render.vhost_context(settings, service, log_dir=str(logs), peers=peers))
        path = prefix / f"{service}.conf"
        path.write_text(vhost_transform(text))
        files.append(path)
    return render.scratch_nginx_conf(prefix, files)


@contextmanager
def serving(prefix: Path, conf: Path, ports: list[int]):
    """Run nginx in the foreground on conf until the block ends."""
    check = render.nginx_test(prefix, conf)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed: {check.stderr}")
    args = [render.nginx_binary(), "-p", str(prefix), "-c", str(conf)]
    with running(args, log=prefix / "logs" / "stdout.log") as process:
        for port in ports:
            from tests.support.processes import wait_for_port

            wait_for_port(port, process=process)
        yield process


def reload(prefix: Path, conf: Path) -> subprocess.CompletedProcess:
    return subprocess.run([render.nginx_binary(), "-p", str(prefix), "-c", str(conf), "-s", "reload"], capture_output=True, text=True)
