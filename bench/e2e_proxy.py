"""Benchmark: nginx (rendered vhosts) in front of the app container versus direct, and container start.

Run: /path/to/venv/bin/python bench/e2e_proxy.py [--requests 400] [--rounds 40]   (as root: starts dockerd)
Starts a private engine, builds the image (tests/support/app_image.py), brings up the e2e stack
(tests/support/e2e_stack.py: container + nginx + devlms), then measures with one keep-alive client:
Sifu /health and Jupyter /api (identity-less health path) direct vs through nginx (p50/p99 ratio;
target ≤ 1.15), a warm kernel round trip (execute 6*7 on an open websocket) direct vs through nginx
(target ≤ 1.1), and `docker restart` to both services ready. Appends to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.record import record, summary  # noqa: E402
from tests.support import app_image as app  # noqa: E402
from tests.support.e2e_stack import random_file, start_e2e_stack  # noqa: E402


def http_times(url: str, n: int) -> list[float]:
    import httpx

    times = []
    with httpx.Client(timeout=10) as client:
        for _ in range(20):
            client.get(url)  # warm-up
        for _ in range(n):
            started = time.perf_counter()
            assert client.get(url).status_code == 200
            times.append(time.perf_counter() - started)
    return times


def kernel_times(base_url: str, kernel_id: str, cookie: str, rounds: int) -> list[float]:
    import websocket

    split = urlsplit(base_url)
    ws = websocket.create_connection(f"ws://{split.netloc}/api/kernels/{quote(kernel_id)}/channels?session_id={uuid.uuid4().hex}",
                                     header=[f"Cookie: {cookie}"], origin=f"http://{split.netloc}", timeout=30)
    times = []
    try:
        for i in range(rounds + 5):
            msg_id = uuid.uuid4().hex
            started = time.perf_counter()
            ws.send(json.dumps({"header": {"msg_id": msg_id, "username": "bench", "session": uuid.uuid4().hex,
                                           "msg_type": "execute_request", "version": "5.3", "date": ""},
                                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                                "content": {"code": "6*7", "silent": False, "store_history": False, "user_expressions": {},
                                            "allow_stdin": False, "stop_on_error": True}}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") == msg_id and msg["msg_type"] == "execute_result":
                    break
            if i >= 5:  # the first rounds warm the kernel
                times.append(time.perf_counter() - started)
    finally:
        ws.close()
    return times


def row(name: str, direct: list[float], proxied: list[float], target: float) -> str:
    d, p = summary(direct), summary(proxied)
    return (f"| {name} | {d['p50'] * 1000:.2f} | {p['p50'] * 1000:.2f} | {p['p50'] / d['p50']:.2f} | "
            f"{d['p99'] * 1000:.2f} | {p['p99'] * 1000:.2f} | {p['p99'] / d['p99']:.2f} | ≤ {target} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--restarts", type=int, default=3)
    args = parser.parse_args()
    with app.built_app_image("/tmp") as setup:
        client, built = setup.client, setup.built
        with ExitStack() as exits:
            stack = start_e2e_stack(exits, built, client, setup.work / "stack", students=0)
            load = os.getloadavg()
            rows = [row("Sifu /health", http_times(f"{stack.direct_sifu_url}/health", args.requests),
                        http_times(f"{stack.sifu_url}/health", args.requests), 1.15),
                    row("Jupyter /api", http_times(f"{stack.direct_jupyter_url}/api", args.requests),
                        http_times(f"{stack.jupyter_url}/api", args.requests), 1.15)]
            student, path = stack.jupyter_session("alice", random_file("bench"))
            kernel = student.start_session(path).json()["kernel"]["id"]
            cookie = student.cookie_header()
            rows.append(row("kernel round trip (warm, 6*7)", kernel_times(stack.direct_jupyter_url, kernel, cookie, args.rounds),
                            kernel_times(stack.jupyter_url, kernel, cookie, args.rounds), 1.1))
            student.close()
            starts = []
            for _ in range(args.restarts):
                started = time.monotonic()
                stack.restart_container()
                starts.append(time.monotonic() - started)
        record("e2e: nginx in front vs direct, and container restart to ready (bench/e2e_proxy.py)", [
            "The app image on a private dockerd (host network), nginx with the rendered vhosts on other ports,",
            f"one keep-alive client, sequential requests ({args.requests} per path, {args.rounds} kernel rounds).",
            f"Load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 shared cores; other agents were running).",
            "",
            "| path | direct p50 ms | nginx p50 ms | ratio p50 | direct p99 ms | nginx p99 ms | ratio p99 | target |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "`docker restart` to Sifu /health and Jupyter /api both 200: "
            + ", ".join(f"{s:.1f} s" for s in starts) + f" (median {sorted(starts)[len(starts) // 2]:.1f} s).",
        ])


if __name__ == "__main__":
    main()
