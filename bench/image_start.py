"""Benchmark: image build times and container start-to-ready, on a private dockerd.

Run: /path/to/venv/bin/python bench/image_start.py [--runs 5]   (as root: it starts dockerd)
It starts its own engine (tests/support/docker_engine.py), imports the cached debootstrap base,
builds the base and app images from scratch, rebuilds with no change, then starts the container
RUNS times and measures from `docker run` until Sifu /health and Jupyter /api both answer 200.
Baseline, alternating with those runs so both see the same load: the same image running a trivial
Python HTTP server on both ports instead of supervisord (engine, container and interpreter start-up).
Beside wall times it records the container's CPU by the moment both answered (its cgroup) and each program's
share of it (/proc): figures that hardly depend on the shared machine's load, unlike the ratio.
Appends a section to bench/RESULTS.md (bench/record.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.record import record  # noqa: E402
from deployer import image  # noqa: E402
from tests.support import app_image as app, base_image  # noqa: E402

# The baseline container's program: answers 200 on every port given, as soon as Python is up.
TRIVIAL_SERVER = """
import http.server, sys, threading
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args):
        pass
servers = [http.server.ThreadingHTTPServer(("0.0.0.0", int(port)), Ok) for port in sys.argv[1:]]
for server in servers[1:]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
servers[0].serve_forever()
"""


def _cgroup_dir(container_id: str) -> Path | None:
    """The container's cgroup directory (v1 cpuacct or v2), or None."""
    for path in (Path(f"/sys/fs/cgroup/cpuacct/docker/{container_id}"), Path(f"/sys/fs/cgroup/docker/{container_id}"),
                 Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope")):
        if path.exists():
            return path
    return None


def container_cpu_seconds(container_id: str) -> float | None:
    """CPU time the container's processes have used so far, from its cgroup, or None.

    Unlike wall time this hardly depends on what else the shared cores are doing."""
    cgroup = _cgroup_dir(container_id)
    if cgroup is None:
        return None
    if (cgroup / "cpuacct.usage").exists():
        return int((cgroup / "cpuacct.usage").read_text()) / 1e9
    fields = dict(line.split() for line in (cgroup / "cpu.stat").read_text().splitlines())
    return int(fields["usage_usec"]) / 1e6


# Which program a process of the container is, by the first marker its command line holds (an exec'd launcher
# keeps its pid, so each figure includes sifu.launch's or sifu.confine's own start).
PROGRAMS = (("dumb-init", "PID 1 (sifu.confine, dumb-init)"), ("sifu.supervise", "supervisord"),
            ("-m jupyter_server", "jupyter"), ("sifu.kernel_broker", "kernel broker"), ("-m sifu ", "sifu"))


def program_cpu_seconds(container_id: str) -> dict[str, float]:
    """CPU each program of the container has used so far (user + system, from /proc), Sifu's master and workers
    apart: where the container's CPU went, which hardly depends on the load either."""
    cgroup = _cgroup_dir(container_id)
    if cgroup is None:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, int, float]] = {}
    for pid in (cgroup / "cgroup.procs").read_text().split():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        label = next((name for marker, name in PROGRAMS if marker in command), "other")
        found[int(pid)] = (label, int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    seconds: dict[str, float] = {}
    for label, parent, used in found.values():
        if label == "sifu":
            label = "sifu workers" if found.get(parent, ("",))[0] == "sifu" else "sifu master"
        seconds[label] = seconds.get(label, 0.0) + used
    return seconds


def measure(runs: int, work_parent: str = "/tmp") -> dict:
    figures: dict = {}
    with app.built_app_image(work_parent, figures) as setup:
        tarball = base_image.rootfs_tarball()
        seconds_file = Path(f"{tarball}.seconds")
        figures["debootstrap_first_run"] = float(seconds_file.read_text()) if seconds_file.exists() else None
        client, docker, built = setup.client, setup.docker, setup.built
        figures["base_build"] = setup.result.seconds.get(built.plan.base.ref)
        figures["final_build"] = setup.result.seconds.get(built.plan.final.ref)
        started = time.monotonic()
        again = image.ensure_image(built.settings, docker, network="host")
        figures["unchanged_build"] = time.monotonic() - started
        assert not again.built
        figures["image_size_mb"] = client.images.get(built.ref).attrs["Size"] / 1e6
        notebooks = app.prepare_notebook_root(setup.work / "notebooks")
        ready, baseline, programs = [], [], []
        trivial = ["python", "-c", TRIVIAL_SERVER, str(built.sifu_port), str(built.jupyter_port)]
        for _ in range(runs):
            started = time.monotonic()
            container = app.run_app(client, built, notebooks, command=trivial)
            try:
                app.wait_ready(built, container, timeout=60)
                baseline.append((time.monotonic() - started, container_cpu_seconds(container.id)))
            finally:
                container.remove(force=True)
            started = time.monotonic()
            container = app.run_app(client, built, notebooks)
            try:
                each = app.wait_ready(built, container, timeout=60)
                ready.append((time.monotonic() - started, each["sifu"], each["jupyter"], container_cpu_seconds(container.id)))
                programs.append(program_cpu_seconds(container.id))
            finally:
                container.remove(force=True)
        figures["ready"] = ready
        figures["baseline"] = baseline
        figures["programs"] = programs
        figures["load"] = os.getloadavg()
    return figures


def report(figures: dict, runs: int) -> list[str]:
    both = [r[0] for r in figures["ready"]]
    base = [b[0] for b in figures["baseline"]]

    def cpu(value):
        return "n/a" if value is None else f"{value:.2f} s"

    cpus = [r[3] for r in figures["ready"] if r[3] is not None]
    base_cpus = [b[1] for b in figures["baseline"] if b[1] is not None]

    def fmt(value):
        return "n/a" if value is None else f"{value:.1f} s"

    return [
        "Private dockerd 20.10 (host network), base `localbase:bookworm` (debootstrap), pip from PyPI.",
        "",
        "| step | time |",
        "|---|---|",
        f"| debootstrap rootfs (first run on a machine; cached after) | {fmt(figures['debootstrap_first_run'])} |",
        f"| import the cached rootfs into the engine | {fmt(figures['import'])} |",
        f"| build base image (venv: Jupyter, supervisord, dumb-init) | {fmt(figures['base_build'])} |",
        f"| build app image (Sifu's deps, Sifu, rendered configs) | {fmt(figures['final_build'])} |",
        f"| ensure_image again with nothing changed (no build) | {figures['unchanged_build']:.2f} s |",
        f"| app image size | {figures['image_size_mb']:.0f} MB |",
        "",
        f"Container start to ready, from `docker run` until Sifu `/health` and Jupyter `/api` both answer 200 ({runs} runs):",
        "",
        "| run | both ready | Sifu | Jupyter | container CPU used by then | baseline ready | baseline CPU |",
        "|---|---|---|---|---|---|---|",
        *[f"| {i + 1} | {total:.2f} s | {sifu:.2f} s | {jupyter:.2f} s | {cpu(used)} | {b_total:.2f} s | {cpu(b_used)} |"
          for i, ((total, sifu, jupyter, used), (b_total, b_used)) in enumerate(zip(figures["ready"], figures["baseline"]))],
        "",
        f"- median {statistics.median(both):.2f} s, max {max(both):.2f} s (target: within 5 s)",
        f"- baseline (same image, a trivial Python HTTP server on both ports instead of supervisord; runs "
        f"alternated with the above): median {statistics.median(base):.2f} s, "
        f"max {max(base):.2f} s",
        f"- ratio both ready / baseline (medians): {statistics.median(both) / statistics.median(base):.2f}",
        f"- container ready / trivial container: {statistics.median(both) / statistics.median(base):.2f}",
        *([f"- container CPU time by the moment both answered (cgroup; load-independent): median "
           f"{statistics.median(cpus):.2f} s; baseline {statistics.median(base_cpus):.2f} s"] if cpus and base_cpus else []),
        *([f"- of which, by program (median): " + ", ".join(
            f"{label} {statistics.median(p.get(label, 0.0) for p in figures['programs']):.2f} s"
            for label in sorted({label for p in figures["programs"] for label in p}))] if any(figures.get("programs", [])) else []),
        f"- load average after the runs: {' / '.join(f'{x:.2f}' for x in figures['load'])} (1/5/15 min; the 2 cores are shared)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work-dir", default="/tmp", help="where its dockerd and build directories go")
    parser.add_argument("--note", default="", help="a line appended to the section (what this run measures)")
    args = parser.parse_args()
    figures = measure(args.runs, args.work_dir)
    lines = report(figures, args.runs)
    if args.note:
        lines.append(f"- {args.note}")
    record("Image: build times and container start-to-ready", lines)


if __name__ == "__main__":
    main()
