"""Benchmark: kernel start to first result through the kernel broker vs jupyter_client's stock provisioner (issue 13).

Run: /path/to/venv/bin/python bench/kernel_broker_start.py [--rounds 8]   (as root: it starts dockerd)
It builds the app image on its own engine (as bench/image_start.py does) and runs the container. The broker side
is the container's own Jupyter (every kernel through sifu.kernel_broker as the student's uid); the baseline is a
second Jupyter started in the same container the same way (sifu.launch, user jupyter) from the same rendered
config plus one line, `kernel_launch = "same-user"` (the stock LocalProvisioner, kernels as Jupyter's user). The
two take turns round by round, so a load change on the shared machine hits both alike. Each round, for one
student: POST /api/sessions (the kernel starts), then `6*7` over the kernel websocket until "42"; then the session
is deleted (the kernel shut down) before the next round.
Appends a section to bench/RESULTS.md ending in `- broker / stock: RATIO` (p50).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.record import record  # noqa: E402
from deployer import image  # noqa: E402
from deployer.docker_client import Docker  # noqa: E402
from sandbox.processes import free_port  # noqa: E402
from tests.integration.image.test_container import signed_in, start_kernel  # noqa: E402
from tests.support import app_image as app, base_image, docker_engine  # noqa: E402
from tests.support.jupyter_client import execute  # noqa: E402

STOCK_CONFIG = "/tmp/stock_jupyter_server_config.py"


def start_stock_jupyter(container, built: app.AppImage, port: int) -> str:
    """A second Jupyter in the container, as jupyter, with the stock provisioner; its URL once it answers."""
    config = (f"exec(open('/etc/sifu/jupyter_server_config.py').read())\n"
              f"c.ServerApp.port = {port}\nc.LimitedKernelManager.kernel_launch = 'same-user'\n")
    code, out = container.exec_run(["python", "-c", f"import os; open({STOCK_CONFIG!r}, 'w').write({config!r}); "
                                    f"os.chmod({STOCK_CONFIG!r}, 0o644)"])
    assert code == 0, out
    container.exec_run(["python", "-m", "sifu.launch", "jupyter", "--user", "jupyter", "--sifu-url",
                        f"http://127.0.0.1:{built.sifu_port}", "--", "python", "-m", "jupyter_server",
                        f"--config={STOCK_CONFIG}"], detach=True, workdir="/notebooks")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api", timeout=2).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the stock Jupyter did not answer within 60 s")


def start_to_result(container, url: str) -> float:
    student = signed_in(container, url, "alice")
    try:
        started = time.monotonic()
        kernel = start_kernel(student, "alice")
        assert execute(url, kernel, student.cookie_header(), "6*7") == "42"
        seconds = time.monotonic() - started
        for session in student.request("GET", "/api/sessions").json():
            student.request("DELETE", f"/api/sessions/{session['id']}")
        return seconds
    finally:
        student.close()


def measure(rounds: int, work_parent: str) -> dict[str, list[float]]:
    work = Path(tempfile.mkdtemp(prefix="sifu-bench-", dir=work_parent))
    base_image.rootfs_tarball()
    engine = docker_engine.start_engine(work / "engine")
    try:
        client = engine.client()
        base_image.import_base(client)
        environ = app.image_environ(free_port(), free_port())
        settings = app.load_settings(environ)
        docker = Docker(engine.base_url)
        image.ensure_image(settings, docker, network="host")
        plan = image.plan(settings)
        built = app.AppImage(ref=plan.final.ref, settings=settings, environ=environ, plan=plan, build_seconds={})
        container = app.run_app(client, built, app.prepare_notebook_root(work / "notebooks"))
        try:
            app.wait_ready(built, container, timeout=60)
            paths = {"broker": f"http://127.0.0.1:{built.jupyter_port}", "stock": start_stock_jupyter(container, built, free_port())}
            times: dict[str, list[float]] = {name: [] for name in paths}
            for name, url in paths.items():
                start_to_result(container, url)  # warm-up: imports and page caches, not counted
            for _ in range(rounds):
                for name, url in paths.items():
                    times[name].append(start_to_result(container, url))
        finally:
            container.remove(force=True)
        docker.close()
        client.close()
    finally:
        docker_engine.stop_engine(engine)
        shutil.rmtree(work, ignore_errors=True)
    return times


def report(times: dict[str, list[float]], rounds: int) -> list[str]:
    p50 = {name: statistics.median(values) for name, values in times.items()}
    lines = [f"Kernel start (POST /api/sessions) to the first `6*7` result over the websocket, one student, {rounds} "
             "rounds taking turns, in one container: the image's Jupyter (kernel broker, the student's uid) and a "
             "second Jupyter from the same config with the stock provisioner (kernels as Jupyter's user).", "",
             "| provisioner | p50 (s) | min (s) | max (s) |", "|---|---|---|---|"]
    for name, values in times.items():
        lines.append(f"| {name} | {p50[name]:.2f} | {min(values):.2f} | {max(values):.2f} |")
    lines += ["", f"- broker / stock: {p50['broker'] / p50['stock']:.2f} (target ≤ 1.2)"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--work-dir", default="/tmp", help="where its dockerd and build directories go")
    args = parser.parse_args()
    record("Kernel start through the broker vs the stock provisioner", report(measure(args.rounds, args.work_dir), args.rounds))


if __name__ == "__main__":
    main()
