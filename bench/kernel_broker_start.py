"""Benchmark: kernel start to first result through the kernel broker vs jupyter_client's stock provisioner (issue 13).

Run: /path/to/venv/bin/python bench/kernel_broker_start.py [--rounds 8] [--kernels 5]   (as root: it starts dockerd)
It builds the app image on its own engine (as bench/image_start.py does) and runs the container. The broker side
is the container's own Jupyter (every kernel through sifu.kernel_broker as the student's uid); the baseline is a
second Jupyter started in the same container the same way (sifu.launch, user jupyter) from the same rendered
config plus one line, `kernel_launch = "same-user"` (the stock LocalProvisioner, kernels as Jupyter's user). The
two take turns round by round, so a load change on the shared machine hits both alike. Each round, for one
student: POST /api/sessions (the kernel starts), then `6*7` over the kernel websocket until "42"; then the session
is deleted (the kernel shut down) before the next round.
Then memory per idle kernel: KERNELS students per side each start a kernel, run `6*7` and stay idle; the PSS of
each kernel's process tree is read as its uid (/proc/<pid>/smaps_rollup) and the medians compared.
Appends a section to bench/RESULTS.md with `- broker / stock: RATIO` (p50 start) and the memory ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.record import record  # noqa: E402
from sandbox.processes import free_port  # noqa: E402
from tests.integration.image.test_container import signed_in, start_kernel  # noqa: E402
from tests.support import app_image as app  # noqa: E402
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


def kernel_pss_kib(container, pid: int, uid: int, gid: int) -> int:
    """PSS of the kernel's process tree (the kernel and any children), KiB, read as the kernel's own uid (root in
    the container lacks CAP_SYS_PTRACE, which reading another uid's smaps_rollup needs; the gid must match too)."""
    script = ("import sys; from pathlib import Path; root = int(sys.argv[1]); parents = {}\n"
              "for stat in Path('/proc').glob('[0-9]*/stat'):\n"
              "    try: fields = stat.read_text().rpartition(')')[2].split(); parents[int(stat.parent.name)] = int(fields[1])\n"
              "    except OSError: pass\n"
              "tree, grown = {root}, True\n"
              "while grown:\n"
              "    more = {p for p, pp in parents.items() if pp in tree} - tree; grown = bool(more); tree |= more\n"
              "total = 0\n"
              "for p in tree:\n"
              "    for line in Path(f'/proc/{p}/smaps_rollup').read_text().splitlines():\n"
              "        if line.startswith('Pss:'): total += int(line.split()[1])\n"
              "print(total)")
    code, out = container.exec_run(["python", "-c", script, str(pid)], user=f"{uid}:{gid}")
    assert code == 0, out
    return int(out)


def idle_kernels_pss(container, url: str, names: list[str]) -> list[int]:
    """Start one kernel per name (all at once, as students would have them), let them go idle, and read each
    one's PSS; the sessions are deleted after."""
    students, kernels = [], []
    try:
        for name in names:
            student = signed_in(container, url, name)
            students.append(student)
            kernel = start_kernel(student, name)
            ids = execute(url, kernel, student.cookie_header(), "import os; (os.getpid(), os.getuid(), os.getgid())")
            kernels.append(tuple(int(part) for part in ids.strip("()").split(",")))
        time.sleep(3)  # idle: the first cell's allocations settled
        return [kernel_pss_kib(container, *ids) for ids in kernels]
    finally:
        for student in students:
            for session in student.request("GET", "/api/sessions").json():
                student.request("DELETE", f"/api/sessions/{session['id']}")
            student.close()


def measure(rounds: int, kernels: int, work_parent: str) -> dict[str, dict[str, list]]:
    with app.built_app_image(work_parent) as setup:
        built = setup.built
        container = app.run_app(setup.client, built, app.prepare_notebook_root(setup.work / "notebooks"))
        try:
            app.wait_ready(built, container, timeout=60)
            paths = {"broker": f"http://127.0.0.1:{built.jupyter_port}", "stock": start_stock_jupyter(container, built, free_port())}
            times: dict[str, list[float]] = {name: [] for name in paths}
            for name, url in paths.items():
                start_to_result(container, url)  # warm-up: imports and page caches, not counted
            for _ in range(rounds):
                for name, url in paths.items():
                    times[name].append(start_to_result(container, url))
            # One side after the other, the same number of kernels, so shared pages are split alike.
            memory = {name: idle_kernels_pss(container, url, [f"{name}{n}" for n in range(kernels)])
                      for name, url in paths.items()}
        finally:
            container.remove(force=True)
    return {"times": times, "memory": memory}


def report(figures: dict[str, dict[str, list]], rounds: int) -> list[str]:
    times, memory = figures["times"], figures["memory"]
    p50 = {name: statistics.median(values) for name, values in times.items()}
    lines = [f"Kernel start (POST /api/sessions) to the first `6*7` result over the websocket, one student, {rounds} "
             "rounds taking turns, in one container: the image's Jupyter (kernel broker, the student's uid) and a "
             "second Jupyter from the same config with the stock provisioner (kernels as Jupyter's user).", "",
             "| provisioner | p50 (s) | min (s) | max (s) |", "|---|---|---|---|"]
    for name, values in times.items():
        lines.append(f"| {name} | {p50[name]:.2f} | {min(values):.2f} | {max(values):.2f} |")
    lines += ["", f"- broker / stock: {p50['broker'] / p50['stock']:.2f} (target ≤ 1.2)"]
    count = len(memory["broker"])
    pss = {name: statistics.median(values) for name, values in memory.items()}
    lines += ["", f"Memory per idle kernel: PSS of the kernel's process tree after `6*7`, median of {count} kernels per "
              f"side (one per student), read as the kernel's uid from /proc/<pid>/smaps_rollup; each side's {count} kernels "
              "started one Jupyter after the other in the same container (stock: Jupyter's user, no broker).", "",
              "| provisioner | median PSS (MiB) | min (MiB) | max (MiB) |", "|---|---|---|---|"]
    for name, values in memory.items():
        lines.append(f"| {name} | {pss[name] / 1024:.1f} | {min(values) / 1024:.1f} | {max(values) / 1024:.1f} |")
    lines += ["", f"- broker / stock, memory per idle kernel: {pss['broker'] / pss['stock']:.2f}"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--kernels", type=int, default=5, help="idle kernels per side for the memory figures")
    parser.add_argument("--work-dir", default="/tmp", help="where its dockerd and build directories go")
    args = parser.parse_args()
    record("Kernel start and memory per idle kernel: the broker vs the stock provisioner",
           report(measure(args.rounds, args.kernels, args.work_dir), args.rounds))


if __name__ == "__main__":
    main()
