"""Benchmark Sifu's serve path and Jupyter's Sifu identity check, each against a trivial handler.

Starts the real stack (devlms, Sifu with N workers, Jupyter) from tests/support/sifu_stack.py, then runs
ApacheBench (`ab`, Debian apache2-utils) with keep-alive at C concurrent clients:

  sifu  serve   GET /v1/api/notebooks/users/alice/courses/<course>/files/<file>   (token lookup, file check,
                signing, 302)         vs  GET /health                           (same server, trivial)
  jupyter auth  GET /api/status (identity cookie verified, little else)    vs  GET /api (same server, no identity)
                and, for scale, GET /api/contents/users/alice/<course>/<file>?content=0 (identity + authorizer + stat)

ab speaks HTTP/1.0 and uvicorn closes each of its connections ("Keep-Alive requests: 0"), so every ab request
also pays a TCP connection, which nginx -> Sifu in production does not (HTTP/1.1, an upstream keepalive pool).
So Sifu's two paths are also measured with wrk (Debian `wrk`: HTTP/1.1, keep-alive, the same C clients), in
ROUNDS rounds taking turns serve / trivial, medians reported; the named ratio line is wrk's, ab's stays beside it.

Results (throughput, p50, p99 and the ratios) are printed and appended to bench/RESULTS.md with the
machine and date. This is a measurement, not a timed test: it never fails on a slow number.

    .venv/bin/python bench/sifu_serve.py [--requests 5000] [--concurrency 50] [--workers 1] [--rounds 3] [--seconds 5]
    (or ./inv bench --name sifu_serve)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.capacity.proctree import cpu_seconds, descendants  # noqa: E402
from tests.support.sifu_stack import start_stack  # noqa: E402

COURSE = "course-v1:Bench+B1+2026"
FILE = "bench.ipynb"


@dataclass
class Result:
    name: str
    rps: float
    p50: float
    p99: float
    failed: int
    non_2xx: int
    server_cpu_us: float = 0.0  # CPU the serving process tree spent per request (load-independent)


def run_ab(name: str, url: str, requests: int, concurrency: int, headers: list[str], server: int | None = None) -> Result:
    """ab's figures; with `server` (a pid), also the CPU its process tree used per request meanwhile."""
    pids = descendants([server]) if server else []
    cpu_before = cpu_seconds(pids)
    argv = ["ab", "-q", "-k", "-n", str(requests), "-c", str(concurrency), "-s", "30"]
    for header in headers:
        argv += ["-H", header]
    output = subprocess.run([*argv, url], capture_output=True, text=True, timeout=600).stdout

    def number(pattern: str, default: float = 0.0) -> float:
        match = re.search(pattern, output, re.MULTILINE)
        return float(match.group(1)) if match else default

    result = Result(name, number(r"^Requests per second:\s+([\d.]+)"), number(r"^\s+50%\s+(\d+)"), number(r"^\s+99%\s+(\d+)"),
                    int(number(r"^Failed requests:\s+(\d+)")), int(number(r"^Non-2xx responses:\s+(\d+)")))
    if result.rps == 0:
        raise RuntimeError(f"ab gave no result for {name}:\n{output}")
    result.server_cpu_us = (cpu_seconds(pids) - cpu_before) / requests * 1e6
    return result


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(name: str, url: str, seconds: int, concurrency: int, headers: list[str], server: int) -> Result:
    """wrk's figures (one thread, `concurrency` keep-alive HTTP/1.1 connections) and the server's CPU per request."""
    pids = descendants([server])
    cpu_before = cpu_seconds(pids)
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "30s"]
    for header in headers:
        argv += ["-H", header]
    output = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 120).stdout
    cpu = cpu_seconds(pids) - cpu_before
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    total = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if not (total and rps and len(percentiles) == 2):
        raise RuntimeError(f"wrk gave no result for {name}:\n{output}")
    errors = re.search(r"^\s+Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output, re.MULTILINE)
    bad = re.search(r"^\s+Non-2xx or 3xx responses: (\d+)", output, re.MULTILINE)
    return Result(name, float(rps.group(1)), _milliseconds(percentiles["50"]), _milliseconds(percentiles["99"]),
                  sum(int(n) for n in errors.groups()) if errors else 0, int(bad.group(1)) if bad else 0,
                  cpu / int(total.group(1)) * 1e6)


def median_result(runs: list[Result]) -> Result:
    """Each figure's median over the rounds (the failures summed)."""
    return Result(runs[0].name, *(statistics.median(getattr(r, f) for r in runs) for f in ("rps", "p50", "p99")),
                  sum(r.failed for r in runs), sum(r.non_2xx for r in runs), statistics.median(r.server_cpu_us for r in runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1,
                        help="Sifu worker processes (uvicorn workers under gunicorn); config/defaults.yml's sifu.workers is 1")
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds, serve and trivial taking turns")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/RESULTS.md")
    args = parser.parse_args()
    for tool, package in (("ab", "apache2-utils"), ("wrk", "wrk")):
        if not shutil.which(tool):
            print(f"bench: {tool} is missing: apt-get install {package}", file=sys.stderr)
            return 2

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="sifu-bench-"))
    workdir.chmod(0o755)
    stack = start_stack(workdir, sifu_workers=args.workers)
    try:
        import httpx

        token = stack.token("alice")
        auth = {"Authorization": f"Bearer {token}"}
        from devlms.app import demo_notebook

        httpx.post(f"{stack.sifu.url}/v1/api/notebooks/courses/files/", headers=auth,
                   json={"notey_notey": {"course": COURSE, "file": FILE, "data": demo_notebook("bench")}}).raise_for_status()
        httpx.post(f"{stack.sifu.url}/v1/api/notebooks/users/courses/files/", headers=auth,
                   json={"notey_notey": {"username": "alice", "course": COURSE, "file": FILE}}).raise_for_status()
        serve = f"{stack.sifu.url}/v1/api/notebooks/users/alice/courses/{quote(COURSE, safe='')}/files/{FILE}"
        cookie = "; ".join(f"{k}={v}" for k, v in stack.identity_cookie("alice").items())
        contents = f"{stack.jupyter.url}/api/contents/users/alice/{quote(COURSE, safe='')}/{FILE}?content=0"
        assert httpx.get(serve, headers=auth).status_code == 302
        assert httpx.get(contents, headers={"Cookie": cookie}).status_code == 200
        assert httpx.get(contents).status_code == 403
        assert httpx.get(f"{stack.jupyter.url}/api/status", headers={"Cookie": cookie}).status_code == 200
        assert httpx.get(f"{stack.jupyter.url}/api/status").status_code == 403

        n, c = args.requests, args.concurrency
        warm = max(200, n // 10)
        run_ab("warm-up", serve, warm, c, [f"Authorization: Bearer {token}"])
        run_ab("warm-up", contents, warm, c, [f"Cookie: {cookie}"])
        sifu_pid, jupyter_pid = stack.sifu.proc.popen.pid, stack.jupyter.proc.popen.pid
        results = [
            run_ab("sifu: serve (302 + signed cookie)", serve, n, c, [f"Authorization: Bearer {token}"], sifu_pid),
            run_ab("sifu: /health (trivial)", f"{stack.sifu.url}/health", n, c, [], sifu_pid),
            run_ab("jupyter: identity check (/api/status)", f"{stack.jupyter.url}/api/status", n, c, [f"Cookie: {cookie}"], jupyter_pid),
            run_ab("jupyter: /api (trivial, no identity)", f"{stack.jupyter.url}/api", n, c, [], jupyter_pid),
            run_ab("jupyter: identity + authorizer + stat (contents, content=0)", contents, n, c, [f"Cookie: {cookie}"], jupyter_pid),
        ]
        keep_alive: dict[str, list[Result]] = {"serve": [], "trivial": []}
        for _ in range(args.rounds):
            keep_alive["serve"].append(run_wrk("sifu: serve (302 + signed cookie), wrk keep-alive", serve, args.seconds, c,
                                               [f"Authorization: Bearer {token}"], sifu_pid))
            keep_alive["trivial"].append(run_wrk("sifu: /health (trivial), wrk keep-alive", f"{stack.sifu.url}/health",
                                                 args.seconds, c, [], sifu_pid))
        wrk_serve, wrk_trivial = median_result(keep_alive["serve"]), median_result(keep_alive["trivial"])
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    expected_non_2xx = {results[0].name: n}  # every serve answer is a 302
    for r in results:
        if r.failed or r.non_2xx != expected_non_2xx.get(r.name, 0):
            print(f"warning: {r.name}: {r.failed} failed, {r.non_2xx} non-2xx", file=sys.stderr)
    for r in (wrk_serve, wrk_trivial):
        if r.failed or r.non_2xx:
            print(f"warning: {r.name}: {r.failed} socket errors, {r.non_2xx} answers other than 2xx/3xx", file=sys.stderr)
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rounds = "; ".join(f"serve {s.p99:.2f} / trivial {t.p99:.2f} ms, CPU {s.server_cpu_us:.0f} / {t.server_cpu_us:.0f} µs"
                       for s, t in zip(keep_alive["serve"], keep_alive["trivial"]))
    lines = [
        f"Sifu workers: {args.workers}; Jupyter: 1 process. `ab -k`, {n} requests, {c} concurrent clients; the load",
        f"generator runs on the same machine and takes CPU from the servers. Load average before the run: {load_before};",
        f"after: {load_after}. Then Sifu's two paths with wrk (HTTP/1.1 keep-alive, {c} connections, 1 thread), "
        f"{args.rounds} rounds of {args.seconds} s taking turns, medians.",
        "",
        "| path | req/s | p50 ms | p99 ms | failed | server CPU µs/request |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {r.name} | {r.rps:,.0f} | {r.p50:.0f} | {r.p99:.0f} | {r.failed} | {r.server_cpu_us:.0f} |" for r in results],
        *[f"| {r.name} | {r.rps:,.0f} | {r.p50:.1f} | {r.p99:.1f} | {r.failed} | {r.server_cpu_us:.0f} |" for r in (wrk_serve, wrk_trivial)],
        "",
        f"Ratios to the trivial handler on the same server (ab): serve {results[0].rps / results[1].rps:.2f}× throughput, "
        f"p99 {results[0].p99 / max(results[1].p99, 1):.2f}×; identity check {results[2].rps / results[3].rps:.2f}× throughput, "
        f"p99 {results[2].p99 / max(results[3].p99, 1):.2f}×. Targets: ≥ 1,000 req/s and p99 < 20 ms.",
        f"Server CPU per request (the serving process tree's user+system time / requests; hardly depends on the load): "
        f"serve {results[0].server_cpu_us / max(results[1].server_cpu_us, 1):.2f}× /health's with ab, "
        f"{wrk_serve.server_cpu_us / max(wrk_trivial.server_cpu_us, 1):.2f}× with wrk.",
        f"wrk rounds (p99, CPU per request): {rounds}.",
        f"- serve p99 / trivial p99 (ab, HTTP/1.0, a connection per request): {results[0].p99 / max(results[1].p99, 1):.2f}",
        f"- serve CPU per request / trivial (wrk keep-alive): {wrk_serve.server_cpu_us / max(wrk_trivial.server_cpu_us, 1):.2f}",
        f"- serve p99 / trivial p99: {wrk_serve.p99 / wrk_trivial.p99:.2f}",
    ]
    if args.no_record:
        print("\n".join(lines))
    else:
        from bench.record import record

        record("sifu_serve: serve path and Jupyter identity check at 50 clients", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
