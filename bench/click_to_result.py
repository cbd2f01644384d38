"""Benchmark: sign-in to the first `6*7` result through the real image, ours against JupyterHub (issue 14, item 2).

Run: .venv/bin/python bench/click_to_result.py [--students 10] [--browser-students 3]   (as root: starts dockerd;
     or ./inv bench --name click_to_result)

All sides on this machine in the same run (loopback only), taking turns student by student so a load change on the
shared cores hits all alike:
- ours through the real image (bench/capacity/image.py): the app container built from the local base on a private
  dockerd, nginx with the rendered vhosts in front, per-student kernels through the root kernel broker. devlms
  sign-in → the XBlock's /token and the student's copy → the serve redirect (identity cookie) → the notebook page →
  POST /api/sessions (starts the kernel, as the student's uid) → the kernel websocket → `6*7` to its
  execute_result `42`.
- JupyterHub 6.1.1 (bench/capacity/jupyterhub.py), DummyAuthenticator, through configurable-http-proxy:
  (a) SimpleLocalProcessSpawner; (b) DockerSpawner, one container per student on the same private dockerd, from a
  single-user image built on our base image. The login form → POST /hub/api/users/NAME/server and its progress
  stream (what the spawn page does) → the notebook page on the student's server (the hub's OAuth hop sets its
  cookie) → POST /api/sessions → the kernel websocket → `6*7`. The notebook is put in the student's home
  beforehand, untimed (ours times the copy).
Cold: a new student, no server or kernel. Warm: the same student again with a fresh cookie jar (a new sign-in)
while their kernel (and on JupyterHub their server) still runs. Median of --students fresh students each.
Then the same in Chromium (bench/capacity/browser.py), --browser-students other fresh students per side, cold and
warm: from opening the page after sign-in to the first cell's output `42` in the page.

Then, in ours' app container, a kernel's boot by the broker's exec path and by its zygote (bench/kernel_boot.py:
CPU and wall seconds to the kernel_info reply).
Appends a section to bench/RESULTS.md ending in `- click to first result / JupyterHub: RATIO`
(ours cold through the image / JupyterHub local-process cold, HTTP medians).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity import browser as in_browser  # noqa: E402
from bench.capacity.image import start_ours_in_image  # noqa: E402
from bench.capacity.jupyterhub import PINS, DockerSpawnerSide, HubStudent, build_singleuser_image, start_hub  # noqa: E402
from bench.capacity.ours import FILE, OursStudent  # noqa: E402
from bench import kernel_boot  # noqa: E402
from bench.kernel_roundtrip import execute_request  # noqa: E402
from bench.record import record  # noqa: E402
from devlms.app import demo_notebook  # noqa: E402
from tests.integration.sifu.helpers import COURSE  # noqa: E402
from tests.support.app_image import built_app_image  # noqa: E402
from tests.support.browser import chromium  # noqa: E402

STEPS = ("sign-in", "server", "page", "session", "result")
BOOT_ROUNDS = 8
OURS, LOCAL, DOCKER = "ours (image)", "JupyterHub (local process)", "JupyterHub (DockerSpawner)"


def first_result(student, timeout: float = 120) -> None:
    """Open the kernel websocket, run `6*7`, return when its execute_result (42) has arrived."""
    import websocket

    ws = websocket.create_connection(f"{student.websocket_url()}?session_id={uuid.uuid4().hex}",
                                     header=[f"Cookie: {student.cookie_header()}"], origin=student.origin(), timeout=timeout)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps(execute_request(msg_id, uuid.uuid4().hex)))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "execute_result":
                assert msg["content"]["data"]["text/plain"] == "42", msg
                return
    finally:
        ws.close()


def ours_visit(student: OursStudent) -> dict[str, float]:
    marks = [time.perf_counter()]
    student.sign_in()  # devlms, /token, copy, serve redirect
    marks.append(time.perf_counter())
    marks.append(marks[-1])  # no server to start: Jupyter is shared
    student.open_notebook()
    marks.append(time.perf_counter())
    student.start_session()
    marks.append(time.perf_counter())
    first_result(student)
    marks.append(time.perf_counter())
    return steps(marks)


def hub_visit(student: HubStudent) -> dict[str, float]:
    marks = [time.perf_counter()]
    student.login()
    marks.append(time.perf_counter())
    student.spawn()
    marks.append(time.perf_counter())
    student.open_notebook(FILE)
    marks.append(time.perf_counter())
    student.start_session(FILE)
    marks.append(time.perf_counter())
    first_result(student)
    marks.append(time.perf_counter())
    return steps(marks)


def steps(marks: list[float]) -> dict[str, float]:
    out = {name: marks[i + 1] - marks[i] for i, name in enumerate(STEPS)}
    out["total"] = marks[-1] - marks[0]
    return out


def median_of(visits: list[dict[str, float]], key: str) -> float:
    return statistics.median(v[key] for v in visits)


def report(n: int, results: dict[str, dict[str, list[dict[str, float]]]], browser_n: int,
           browser: dict[str, dict[str, list[float]]], load: tuple[float, float, float],
           load_end: tuple[float, float, float]) -> list[str]:
    lines = [
        f"Median of {n} fresh students per side, sides taking turns student by student, over HTTP (REST + kernel websocket),",
        "one student at a time. Ours through the real image: the app container (built from the local base) on a private",
        "dockerd, host network, nginx with the rendered vhosts in front, each kernel through the root kernel broker as the",
        "student's own uid; devlms sign-in → /token → the student's copy → serve redirect → notebook page → POST /api/sessions",
        "→ websocket `6*7` to its result. JupyterHub: " + ", ".join(PINS[:3]) + ", " + PINS[-1] + ", DummyAuthenticator,",
        "notebook-only single-user servers, configurable-http-proxy in front; (a) SimpleLocalProcessSpawner (every server",
        "as the hub's user); (b) DockerSpawner, a container per student on the same dockerd (host network), image = our",
        "base image + jupyterhub. Login → spawn (API + progress stream) → notebook page (OAuth hop) → POST /api/sessions →",
        "websocket `6*7`. Warm: the same students again, fresh cookie jar, kernel (and hub server) still running.",
        f"Chromium (Debian's, Playwright): {browser_n} other fresh students per side, from opening the page after sign-in",
        "(ours: devlms's course page; JupyterHub: /hub/spawn/NAME?next=the notebook) to `42` under the first cell.",
        f"Load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; at the end: {load_end[0]:.2f} {load_end[1]:.2f} "
        f"{load_end[2]:.2f} (2 shared cores).",
        "",
        "| side | visit | total s | sign-in s | server start s | notebook page s | session s | first result s | Chromium s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for side, visits in results.items():
        for kind, rows in visits.items():
            cells = " | ".join(f"{median_of(rows, key):.2f}" for key in ("total", *STEPS))
            clicks = browser.get(side, {}).get(kind) or []
            lines.append(f"| {side} | {kind} | {cells} | {statistics.median(clicks):.2f} |" if clicks else f"| {side} | {kind} | {cells} | |")
    ours, local, docker = results[OURS], results[LOCAL], results[DOCKER]

    def ratio(a, b, kind):
        return median_of(a[kind], "total") / median_of(b[kind], "total")

    lines += ["", "Medians per step (each column its own median; they need not add up to the total). Chromium: median of "
              f"{browser_n}, each visit: " + "; ".join(f"{side} {kind} " + ", ".join(f"{t:.2f}" for t in times)
                                                      for side, kinds in browser.items() for kind, times in kinds.items()) + ".",
              f"Ours / JupyterHub DockerSpawner, cold: {ratio(ours, docker, 'cold'):.2f}; warm: ours / local process "
              f"{ratio(ours, local, 'warm'):.2f}, ours / DockerSpawner {ratio(ours, docker, 'warm'):.2f}."]
    if browser.get(OURS, {}).get("cold") and browser.get(LOCAL, {}).get("cold"):
        lines.append(f"Chromium, cold: ours / JupyterHub local process {statistics.median(browser[OURS]['cold']) / statistics.median(browser[LOCAL]['cold']):.2f}"
                     + (f", ours / DockerSpawner {statistics.median(browser[OURS]['cold']) / statistics.median(browser[DOCKER]['cold']):.2f}"
                        if browser.get(DOCKER, {}).get("cold") else "") + ".")
    lines += ["Target (issue 14): ours ≤ 0.2× JupyterHub's local-process figure, cold.",
              f"- click to first result / JupyterHub: {ratio(ours, local, 'cold'):.2f}"]
    return lines


def with_boot(lines: list[str], boot: dict[str, dict[str, float]]) -> list[str]:
    """The kernel boot figures before the target and the ratio, which end the section."""
    return lines[:-2] + kernel_boot.report(boot, BOOT_ROUNDS) + lines[-2:]


def in_turns(i: int, sides: list) -> list:
    """Student i's order of the sides: rotated, so no side is always first after a pause."""
    k = i % len(sides)
    return sides[k:] + sides[:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--students", type=int, default=10, help="fresh students per side over HTTP (median of these)")
    parser.add_argument("--browser-students", type=int, default=3, help="fresh students per side in Chromium")
    args = parser.parse_args()
    # Short (containerd's socket path lives under it) and named by SIFU_TEST_DOCKER_PREFIX, as test engines are.
    workdir = Path(tempfile.mkdtemp(prefix=f"{os.environ.get('SIFU_TEST_DOCKER_PREFIX', 'sifu-dk-')}click-", dir="/tmp"))
    workdir.chmod(0o755)
    names = [f"student-{i}" for i in range(1, args.students + 1)]
    browser_names = [f"student-{i}" for i in range(args.students + 1, args.students + args.browser_students + 1)]
    try:
        with ExitStack() as exits:
            setup = exits.enter_context(built_app_image(str(workdir)))
            engine, client, built = setup.engine, setup.client, setup.built
            ours = start_ours_in_image(exits, built, client, workdir / "ours", students=len(names) + len(browser_names))
            image = build_singleuser_image(client, built.plan.base.ref, workdir)
            local = start_hub(workdir / "hub")
            exits.callback(local.stop)
            docker = start_hub(workdir / "hub-docker", DockerSpawnerSide(engine.base_url, image), client)
            exits.callback(docker.stop)
            notebook = demo_notebook(FILE)
            http_sides = [(OURS, lambda name: OursStudent(ours, name), ours_visit),
                          (LOCAL, lambda name: HubStudent(local, name), hub_visit),
                          (DOCKER, lambda name: HubStudent(docker, name), hub_visit)]
            results = {side: {"cold": [], "warm": []} for side, _, _ in http_sides}
            load = os.getloadavg()
            for kind in ("cold", "warm"):
                for i, name in enumerate(names):
                    for side, make, visit in in_turns(i, http_sides):
                        student = make(name)
                        if kind == "cold" and isinstance(student, HubStudent):
                            student.place_notebook(FILE, notebook)
                        try:
                            results[side][kind].append(visit(student))
                        finally:
                            student.close()
                        print(f"{kind} {side} {name}: {results[side][kind][-1]['total']:.2f} s", flush=True)
            boot = kernel_boot.measure(ours.stack.container(), BOOT_ROUNDS)
            print(f"kernel boot: {boot}", flush=True)
            for name in browser_names:
                for hub in (local, docker):
                    HubStudent(hub, name).place_notebook(FILE, notebook)
            browser_sides = [(OURS, lambda b, name: in_browser.ours_visit(b, ours, name, FILE, COURSE)),
                             (LOCAL, lambda b, name: in_browser.hub_visit(b, local, name, FILE)),
                             (DOCKER, lambda b, name: in_browser.hub_visit(b, docker, name, FILE))]
            clicks = {side: {"cold": [], "warm": []} for side, _ in browser_sides}
            with chromium(workdir / "chromium-home") as browser:
                for kind in ("cold", "warm"):
                    for i, name in enumerate(browser_names):
                        for side, visit in in_turns(i, browser_sides):
                            clicks[side][kind].append(visit(browser, name))
                            print(f"Chromium {kind} {side} {name}: {clicks[side][kind][-1]:.2f} s", flush=True)
            load_end = os.getloadavg()
        record("click to first result through the image: sign-in to the first `6*7` result, ours vs JupyterHub "
               "(local process, DockerSpawner), HTTP and Chromium (bench/click_to_result.py)",
               with_boot(report(args.students, results, args.browser_students, clicks, load, load_end), boot))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
