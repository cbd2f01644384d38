"""Benchmark: how many active students one instance carries, ours against JupyterHub (issue 14, item 3).

Run: .venv/bin/python bench/students_per_instance.py [--steps 10,25,50] [--with-100] [--window 30] [--interval 3]
     [--docker-spawner]   (as root: starts dockerd; or ./inv bench --name students_per_instance)

Ours runs through the real image (bench/capacity/image.py): the app container built from the local base on a
private dockerd, nginx in front, each student's kernel through the root kernel broker as the student's own uid.
JupyterHub with its local-process spawner (bench/capacity/jupyterhub.py), and with --docker-spawner also with
DockerSpawner (a container per student on the same dockerd).

Each side in turn, in the same run (ours first, then JupyterHub; one at a time so neither takes the other's
memory or cores): start it, measure its fixed memory with no student, then for each N in --steps add students up
to N (students stay: 10, then 15 more, ...). A student signs in, opens the notebook, starts a kernel
(bench/click_to_result.py describes both flows) and keeps one kernel websocket open, running a small cell every
--interval seconds (uniformly jittered ±1/3) through the side's front proxy (ours: nginx; JupyterHub:
configurable-http-proxy). Once all N run, a --window of seconds is measured:
- cell round trip: execute_request to the kernel's `idle` status, every student's cells in the window (p50, p99);
- memory: PSS (smaps_rollup) of all the instance's processes at the window's end (ours: the app container's
  processes with its containerd shim, and nginx; DockerSpawner: the hub, its proxy and every student's container
  with its shim; dockerd and containerd, which an instance runs whatever it serves, on neither side); per student =
  (that − the fixed memory with no student) / N, i.e. the kernel plus its share of the server (and, on JupyterHub,
  the student's own single-user server); kernels' own PSS shown apart;
- CPU: the instance processes' user+system time over the window / window = cores used;
- Sifu serve p99: serve redirects (through nginx) for random signed-in students at 2 per second during the window
  (ours only; JupyterHub has no such step).
The load generator (this process, asyncio) runs on the same 2 shared cores and takes CPU from both sides alike.
Everything is stopped and reaped at the end.

Appends a section to bench/RESULTS.md ending in `- memory per student / JupyterHub: RATIO` (at the largest N
both sides ran).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity.image import start_ours_in_image  # noqa: E402
from bench.capacity.jupyterhub import PINS, DockerSpawnerSide, HubStudent, build_singleuser_image, start_hub  # noqa: E402
from bench.capacity.ours import FILE, OursStudent  # noqa: E402
from bench.capacity.proctree import cmdline, cpu_seconds, pss_kib  # noqa: E402
from bench.kernel_roundtrip import execute_request, is_idle_for  # noqa: E402
from bench.record import percentile, record  # noqa: E402
from devlms.app import demo_notebook  # noqa: E402
from tests.integration.sifu.helpers import COURSE, serve_url  # noqa: E402
from tests.support.app_image import built_app_image  # noqa: E402

CELL = "sum(range(1000))"  # a small cell
SIGN_IN_CONCURRENCY = 4  # students signing in at once while the others keep running cells
SERVE_RATE = 2.0  # serve redirects per second during the window (ours)
SETTLE = 5.0  # s after the last student's first cell before the window opens
TARGET = 0.5  # s: the p99 cell round trip a step must stay under


@dataclass
class Step:
    students: int
    round_trips: list[float] = field(default_factory=list)
    serve: list[float] = field(default_factory=list)
    memory_kib: int = 0
    kernels_kib: list[int] = field(default_factory=list)
    cores: float = 0.0
    errors: int = 0
    sign_in_cpu: float = 0.0  # instance CPU seconds per student signed in at this step (kernel or server start)


@dataclass
class Side:
    name: str
    fixed_kib: int = 0
    steps: list[Step] = field(default_factory=list)
    sign_in_seconds: list[float] = field(default_factory=list)


class Load:
    """The running students' cell loops; round trips are kept while a step's window is open."""

    def __init__(self, interval: float):
        self.interval = interval
        self.step: Step | None = None
        self.tasks: list[asyncio.Task] = []
        self.stopping = asyncio.Event()
        self.started: set[str] = set()  # students whose first cell came back

    async def student_loop(self, student) -> None:
        from websockets.asyncio.client import connect

        url = f"{student.websocket_url()}?session_id={uuid.uuid4().hex}"
        async with connect(url, additional_headers={"Cookie": student.cookie_header()}, origin=student.origin(),
                           ping_interval=None, max_size=None, open_timeout=120) as ws:
            session = uuid.uuid4().hex
            while not self.stopping.is_set():
                msg_id = uuid.uuid4().hex
                request = execute_request(msg_id, session)
                request["content"]["code"] = CELL
                started = time.perf_counter()
                await ws.send(json.dumps(request))
                try:
                    while not is_idle_for(json.loads(await asyncio.wait_for(ws.recv(), timeout=120)), msg_id):
                        pass
                except (asyncio.TimeoutError, OSError):
                    if self.step:
                        self.step.errors += 1
                    continue
                elapsed = time.perf_counter() - started
                self.started.add(student.username)
                if self.step:
                    self.step.round_trips.append(elapsed)
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=self.interval * random.uniform(2 / 3, 4 / 3))
                except asyncio.TimeoutError:
                    pass

    def add(self, student) -> None:
        self.tasks.append(asyncio.create_task(self.student_loop(student)))

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


REFUSED: list[str] = []  # students whose notebook page was refused once (Sifu's session check failed closed)


def ours_sign_in(ours, name: str) -> OursStudent:
    student = OursStudent(ours, name)
    student.sign_in()
    for attempt in range(3):
        try:
            student.open_notebook()
            break
        except AssertionError:
            # Jupyter asks Sifu whether the session is active (5 s timeout) and fails closed: on an overloaded machine
            # the page redirects to the no-login page. Counted in the report; the student reloads, as one would.
            REFUSED.append(name)
            if attempt == 2:
                raise
    student.start_session()
    return student


def hub_sign_in(hub, name: str) -> HubStudent:
    student = HubStudent(hub, name)
    student.place_notebook(FILE, demo_notebook(FILE))
    student.login()
    student.spawn()
    student.open_notebook(FILE)
    student.start_session(FILE)
    return student


async def serve_prober(ours, students: list[OursStudent], step: Step, until: float) -> None:
    """Serve redirects for random signed-in students through nginx, SERVE_RATE per second, until `until`."""
    import httpx

    async with httpx.AsyncClient(timeout=60, follow_redirects=False) as client:
        while time.monotonic() < until:
            student = random.choice(students)
            started = time.perf_counter()
            reply = await client.get(serve_url(ours.sifu_url, student.username, COURSE, FILE, student.token))
            if reply.status_code == 302:
                step.serve.append(time.perf_counter() - started)
            else:
                step.errors += 1
            await asyncio.sleep(1 / SERVE_RATE)


def owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None  # gone meanwhile


def instance_memory(pids: list[int]) -> tuple[int, list[int]]:
    """PSS of all the instance's processes, and of its kernels alone."""
    total, kernels = 0, []
    for pid in pids:
        pss = pss_kib(pid)
        total += pss
        # A kernel forked by the broker's zygote has the zygote's command line; the zygote itself is root's.
        if "ipykernel_launcher" in cmdline(pid) and owner(pid) not in (0, None):
            kernels.append(pss)
    return total, kernels


async def run_side(side: Side, pids, sign_in, steps: list[int], window: float, interval: float,
                   ours=None) -> None:
    loop = asyncio.get_running_loop()
    load = Load(interval)
    signed_in: list = []
    await asyncio.sleep(SETTLE)
    side.fixed_kib, _ = instance_memory(pids())
    try:
        with ThreadPoolExecutor(SIGN_IN_CONCURRENCY) as pool:
            for n in steps:
                names = [f"student-{i}" for i in range(len(signed_in) + 1, n + 1)]
                cpu_before_sign_in = cpu_seconds(pids())

                def timed(name):
                    started = time.perf_counter()
                    student = sign_in(name)
                    return student, time.perf_counter() - started

                for student, seconds in await asyncio.gather(*(loop.run_in_executor(pool, timed, name) for name in names)):
                    signed_in.append(student)
                    side.sign_in_seconds.append(seconds)
                    load.add(student)
                deadline = time.monotonic() + 180
                while len(load.started) < n and time.monotonic() < deadline:  # bounded: every kernel has answered
                    await asyncio.sleep(0.5)
                step = Step(n)
                # Includes the running students' cells meanwhile (a few ms each): small next to a kernel start.
                step.sign_in_cpu = (cpu_seconds(pids()) - cpu_before_sign_in) / len(names)
                await asyncio.sleep(SETTLE)
                before = cpu_seconds(pids())
                load.step, opened = step, time.monotonic()
                if ours is not None:
                    await serve_prober(ours, signed_in, step, opened + window)
                else:
                    await asyncio.sleep(window)
                load.step = None
                step.cores = (cpu_seconds(pids()) - before) / (time.monotonic() - opened)
                step.memory_kib, step.kernels_kib = instance_memory(pids())
                side.steps.append(step)
                print(f"{side.name} N={n}: p99 {percentile(step.round_trips, 99) * 1000:.0f} ms, "
                      f"{(step.memory_kib - side.fixed_kib) / n / 1024:.0f} MiB/student, {step.cores:.2f} cores", flush=True)
    finally:
        await load.stop()
        for student in signed_in:
            student.close()


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f}"


def report(sides: list[Side], window: float, interval: float, load: tuple[float, float, float],
           load_end: tuple[float, float, float]) -> list[str]:
    lines = [
        f"Each N: students signed in (added to the previous step's), each with a kernel running `{CELL}` every {interval:g} s",
        f"(±1/3) over one websocket through the front proxy (ours: nginx; JupyterHub: configurable-http-proxy), then a {window:g} s",
        "window measured. Memory: PSS (smaps_rollup) of all the instance's processes; per student = (PSS at N − PSS with no",
        "student) / N: the kernel plus its share of the server (JupyterHub: plus the student's single-user server).",
        "Cores: the instance's user+system CPU over the window / window. CPU per sign-in: the instance's CPU from the",
        "step's first sign-in until every new kernel answered, / new students (kernel start; JupyterHub: server + kernel).",
        "Ours through the real image: the app container (supervisord, Sifu with its configured workers, one Jupyter Server, the root kernel",
        "broker, each kernel as the student's own uid) with its containerd shim, and nginx; dockerd/containerd not counted.",
        "JupyterHub: " + ", ".join(PINS[:3]) + ", notebook-only single-user servers; SimpleLocalProcessSpawner"
        + ("; DockerSpawner (" + PINS[-1] + "): a container per student (our base image + jupyterhub) with its shim"
           if len(sides) > 2 else "") + ". The load generator shares the 2 cores.",
        f"Load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; at the end: {load_end[0]:.2f} {load_end[1]:.2f} "
        f"{load_end[2]:.2f} (2 shared cores; other work was running).",
        "",
        "| side | N | cells | p50 ms | p99 ms | errors | PSS MiB | per student MiB | kernel PSS MiB (mean) | cores used | CPU s per sign-in | Sifu serve p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side in sides:
        lines.append(f"| {side.name} | 0 | | | | | {mib(side.fixed_kib)} | | | | | |")
        for step in side.steps:
            serve = f"{percentile(step.serve, 99) * 1000:.0f}" if step.serve else "n/a"
            kernels = mib(statistics.fmean(step.kernels_kib)) if step.kernels_kib else ""
            lines.append(f"| {side.name} | {step.students} | {len(step.round_trips)} | {percentile(step.round_trips, 50) * 1000:.0f} | "
                         f"{percentile(step.round_trips, 99) * 1000:.0f} | {step.errors} | {mib(step.memory_kib)} | "
                         f"{mib((step.memory_kib - side.fixed_kib) / step.students)} | {kernels} | {step.cores:.2f} | {step.sign_in_cpu:.2f} | {serve} |")
    lines.append("")
    for side in sides:
        ok = [s.students for s in side.steps if s.round_trips and percentile(s.round_trips, 99) < TARGET and not s.errors]
        over = [str(s.students) for s in side.steps if s.students not in ok]
        lines.append(f"{side.name}: largest N with p99 cell round trip under {TARGET * 1000:.0f} ms: {max(ok) if ok else 'none'} "
                     f"(of {', '.join(str(s.students) for s in side.steps)}{'; over at ' + ', '.join(over) if over else ''}); "
                     "sign-in to a running kernel under load, median "
                     f"{statistics.median(side.sign_in_seconds):.2f} s.")
    ours, hub = sides[:2]
    common = max(set.intersection(*(set(s.students for s in side.steps) for side in sides)))

    def per_student(side: Side) -> float:
        step = next(s for s in side.steps if s.students == common)
        return (step.memory_kib - side.fixed_kib) / common

    if REFUSED:
        lines.append(f"ours: notebook page refused and reloaded {len(REFUSED)} times (Jupyter's session check with Sifu "
                     "timed out and failed closed).")
    lines += [f"Fixed memory with no student: ours {mib(ours.fixed_kib)} MiB, JupyterHub (local process) {mib(hub.fixed_kib)} MiB "
              f"(ratio {ours.fixed_kib / hub.fixed_kib:.2f}; target ≤ 1)"
              + "".join(f"; {side.name} {mib(side.fixed_kib)} MiB" for side in sides[2:]) + ".",
              f"Memory per student at N={common}: ours {mib(per_student(ours))} MiB, JupyterHub (local process) "
              f"{mib(per_student(hub))} MiB (target ≤ 0.3×)"
              + "".join(f"; {side.name} {mib(per_student(side))} MiB (ratio {per_student(ours) / per_student(side):.2f})"
                        for side in sides[2:]) + ".",
              f"- memory per student / JupyterHub: {per_student(ours) / per_student(hub):.2f}"]
    return lines


async def run(args) -> list[Side]:
    steps = sorted({int(n) for n in args.steps.split(",")} | ({100} if args.with_100 else set()))
    # Short (containerd's socket path lives under it) and named by SIFU_TEST_DOCKER_PREFIX, as test engines are.
    workdir = Path(tempfile.mkdtemp(prefix=f"{os.environ.get('SIFU_TEST_DOCKER_PREFIX', 'sifu-dk-')}students-", dir="/tmp"))
    workdir.chmod(0o755)
    sides = [Side("ours (image)"), Side("JupyterHub (local process)")] + ([Side("JupyterHub (DockerSpawner)")] if args.docker_spawner else [])
    try:
        with built_app_image(str(workdir)) as setup:
            engine, client, built = setup.engine, setup.client, setup.built
            with ExitStack() as exits:
                ours = start_ours_in_image(exits, built, client, workdir / "ours", students=max(steps))
                await run_side(sides[0], ours.pids, lambda name: ours_sign_in(ours, name), steps, args.window, args.interval, ours)
            with ExitStack() as exits:
                hub = start_hub(workdir / "hub")
                exits.callback(hub.stop)
                await run_side(sides[1], hub.pids, lambda name: hub_sign_in(hub, name), steps, args.window, args.interval)
            if args.docker_spawner:
                image = build_singleuser_image(client, built.plan.base.ref, workdir)
                with ExitStack() as exits:
                    hub = start_hub(workdir / "hub-docker", DockerSpawnerSide(engine.base_url, image), client)
                    exits.callback(hub.stop)
                    await run_side(sides[2], hub.pids, lambda name: hub_sign_in(hub, name), steps, args.window, args.interval)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return sides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", default="10,25,50", help="numbers of active students, comma-separated")
    parser.add_argument("--with-100", action="store_true", help="add a step of 100 students (longer run)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured at each step")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between a student's cells")
    parser.add_argument("--docker-spawner", action="store_true", help="also JupyterHub with DockerSpawner (longer run)")
    args = parser.parse_args()
    load = os.getloadavg()
    sides = asyncio.run(run(args))
    record("students per instance through the image: active students, memory, CPU and cell round trip, ours vs "
           "JupyterHub (bench/students_per_instance.py)", report(sides, args.window, args.interval, load, os.getloadavg()))


if __name__ == "__main__":
    main()
