"""Benchmark: sign-in to the first `6*7` result, ours against JupyterHub, over HTTP (issue 14, item 2).

Run: .venv/bin/python bench/click_to_result.py [--students 10]   (or ./inv bench --name click_to_result)

Both sides run on this machine in the same run (loopback only), and take turns student by student so a load
change on the shared cores hits both alike:
- ours, process mode (bench/capacity/ours.py): devlms sign-in → the XBlock's /token and the student's copy → the serve
  redirect (identity cookie) → the notebook page → POST /api/sessions (starts the kernel) → the kernel websocket
  → `6*7` executed, to its execute_result `42`. Jupyter and Sifu through nginx with the rendered vhosts.
- JupyterHub 6.1.1 with SimpleLocalProcessSpawner (bench/capacity/jupyterhub.py): the login form → POST
  /hub/api/users/NAME/server and its progress stream (what the spawn page does) → the notebook page on the
  student's server (the hub's OAuth hop sets its cookie) → POST /api/sessions → the kernel websocket → `6*7`.
  Through configurable-http-proxy, the hub's front door. The notebook is put in the student's home beforehand,
  untimed (ours times the copy).
Cold: a new student, no server or kernel. Warm: the same student again with a fresh cookie jar (a new sign-in)
while their kernel (and on JupyterHub their server) still runs. Median of --students fresh students each.

Appends a section to bench/RESULTS.md ending in `- click to first result / JupyterHub: RATIO`
(ours cold / JupyterHub local-process cold, medians).
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

from bench.capacity.jupyterhub import PINS, HubStudent, start_hub  # noqa: E402
from bench.capacity.ours import FILE, OursStudent, start_ours  # noqa: E402
from bench.kernel_roundtrip import execute_request  # noqa: E402
from bench.record import record  # noqa: E402
from devlms.app import demo_notebook  # noqa: E402

STEPS = ("sign-in", "server", "page", "session", "result")


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


def report(n: int, results: dict[str, dict[str, list[dict[str, float]]]], load: tuple[float, float, float]) -> list[str]:
    lines = [
        f"Median of {n} fresh students per side, sides taking turns student by student, over HTTP (REST + kernel websocket),",
        "one student at a time. Ours: process mode (Sifu 2 workers + one Jupyter Server, the rendered config, no per-student",
        "kernel users), nginx with the rendered vhosts in front; devlms sign-in → /token → the student's copy → serve",
        "redirect → notebook page → POST /api/sessions → websocket `6*7` to its result. JupyterHub: "
        + ", ".join(PINS[:3]) + ",",
        "SimpleLocalProcessSpawner (every server as the hub's user, like our one kernel user), DummyAuthenticator,",
        "notebook-only single-user servers, configurable-http-proxy in front; login → spawn (API + progress stream) →",
        "notebook page (OAuth hop) → POST /api/sessions → websocket `6*7`. Warm: the same students again, fresh cookie jar,",
        "kernel (and hub server) still running.",
        f"Load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 shared cores).",
        "",
        "| side | visit | total s | sign-in s | server start s | notebook page s | session s | first result s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for side, visits in results.items():
        for kind, rows in visits.items():
            cells = " | ".join(f"{median_of(rows, key):.2f}" for key in ("total", *STEPS))
            lines.append(f"| {side} | {kind} | {cells} |")
    ours, hub = results["ours"], results["JupyterHub (local process)"]
    lines += ["", "Medians per step (each column its own median; they need not add up to the total).",
              f"Warm: ours {median_of(ours['warm'], 'total'):.2f} s, JupyterHub {median_of(hub['warm'], 'total'):.2f} s "
              f"(ratio {median_of(ours['warm'], 'total') / median_of(hub['warm'], 'total'):.2f}).",
              "Target (issue 14): ours ≤ 0.2× JupyterHub's local-process figure, cold.",
              f"- click to first result / JupyterHub: {median_of(ours['cold'], 'total') / median_of(hub['cold'], 'total'):.2f}"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--students", type=int, default=10, help="fresh students per side (median of these)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sifu-bench-click-", dir="/tmp"))
    workdir.chmod(0o755)
    try:
        with ExitStack() as exits:
            ours = start_ours(exits, workdir / "ours", students=args.students)
            hub = start_hub(workdir / "hub")
            exits.callback(hub.stop)
            names = [f"student-{i}" for i in range(1, args.students + 1)]
            notebook = demo_notebook(FILE)
            results = {"ours": {"cold": [], "warm": []}, "JupyterHub (local process)": {"cold": [], "warm": []}}
            load = os.getloadavg()
            for kind in ("cold", "warm"):
                for i, name in enumerate(names):
                    sides = [("ours", OursStudent(ours, name), ours_visit), ("JupyterHub (local process)", HubStudent(hub, name), hub_visit)]
                    for side, student, visit in sides if i % 2 == 0 else reversed(sides):
                        if kind == "cold" and isinstance(student, HubStudent):
                            student.place_notebook(FILE, notebook)
                        try:
                            results[side][kind].append(visit(student))
                        finally:
                            student.close()
                        print(f"{kind} {side} {name}: {results[side][kind][-1]['total']:.2f} s", flush=True)
        record("click to first result: sign-in to the first `6*7` result, ours vs JupyterHub (bench/click_to_result.py)",
               report(args.students, results, load))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
