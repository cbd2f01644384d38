"""Benchmark: inv converge's executor on 1, 4, 8 and 16 fresh test hosts, parallel and serial.

Run as root:  ./inv bench --name converge   (or python bench/converge.py).
Each measurement starts from fresh hosts (nothing mounted, no nginx files; the shared volume keeps its marker, as
EFS does). The 16 hosts are namespaces sharing this machine's 2 cores, so the baseline is a plain SSH fan-out
measured in the same run on the same hosts: `true` on each host through the same executor (Fabric ThreadingGroup).
Target (issue 14): converge fan-out / SSH fan-out = (converge parallel t(16)/t(1)) / (SSH parallel t(16)/t(1))
<= 1.2. Appends to bench/RESULTS.md. Uses the test bed of tests/support/hosts.py: sshd hosts in network
namespaces, real nginx, ganesha as EFS. bench/converge_profile.py shows where one host's converge spends.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.record import record  # noqa: E402

SIZES = (1, 4, 8, 16)
REPEATS = 5


def main() -> int:
    if os.geteuid() != 0:
        print("converge benchmark skipped: it needs root (network and mount namespaces)")
        return 0
    from deployer import render
    from deployer.remote import executor
    from tests.support.hosts import TestBed

    timings: dict[tuple[str, int], list[float]] = {}
    load_before = os.getloadavg()[0]
    with TestBed(max(SIZES)) as bed:
        s, _ = bed.settings()
        facts = render.Facts(offline=False)
        for repeat in range(REPEATS):
            for n in SIZES:
                for mode in ("parallel", "serial"):
                    hosts = bed.hosts[:n]
                    for host in hosts:
                        host.reset()
                    bed.deploy_bundle(*hosts)  # EB's part before converge: prebuild hooks, the bundle's vhosts
                    result = executor.converge([h.address for h in hosts], s, facts, serial=(mode == "serial"))
                    bad = [h for h in result.hosts if not h.ok or "nginx" not in h.changed]
                    if bad:
                        print(f"converge did not do the work on {[(h.host, h.error) for h in bad]}", file=sys.stderr)
                        return 1
                    timings.setdefault((mode, n), []).append(result.seconds)
                    # The same executor with a no-op command: what the SSH fan-out alone costs.
                    noop = executor.run_on_hosts([h.address for h in hosts], "true", s, serial=(mode == "serial"))
                    timings.setdefault((f"{mode}-noop", n), []).append(noop.seconds)
                    print(f"repeat {repeat + 1}: {mode:8} n={n:2}  converge {result.seconds:6.2f}s  no-op {noop.seconds:6.2f}s", flush=True)
    write_results(timings, load_before, os.getloadavg()[0])
    return 0


def fan_out_ratio(median: dict[tuple[str, int], float]) -> float:
    """(converge parallel t(16)/t(1)) / (plain SSH parallel t(16)/t(1)): what converge adds to a fan-out."""
    n = SIZES[-1]
    return (median[("parallel", n)] / median[("parallel", 1)]) / (median[("parallel-noop", n)] / median[("parallel-noop", 1)])


def write_results(timings: dict[tuple[str, int], list[float]], load_before: float, load_after: float) -> None:
    median = {key: statistics.median(values) for key, values in timings.items()}
    lines = [
        f"Load average {load_before:.1f} when it started, {load_after:.1f} when it ended (1 min; the 2 cores are shared "
        "with other work);",
        f"median of {REPEATS} runs, each from fresh hosts",
        "(sshd hosts in network namespaces, real nginx, nfs-ganesha as EFS; full converge: mount, fstab,",
        "marker, container restart, nginx files, nginx -t, reload). Time is the whole Fabric Group run,",
        "SSH handshakes included.",
        "",
        "| hosts | converge parallel (s) | converge serial (s) | no-op parallel (s) | no-op serial (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n in SIZES:
        lines.append(f"| {n} | {median[('parallel', n)]:.2f} | {median[('serial', n)]:.2f} "
                     f"| {median[('parallel-noop', n)]:.2f} | {median[('serial-noop', n)]:.2f} |")
    t1p, t16p = median[("parallel", 1)], median[("parallel", SIZES[-1])]
    t1s, t16s = median[("serial", 1)], median[("serial", SIZES[-1])]
    lines += [
        "",
        f"- parallel t(16)/t(1) = **{t16p / t1p:.2f}** (target ≤ 1.5)",
        f"- serial t(16)/t(1) = {t16s / t1s:.2f}",
        f"- no-op (SSH fan-out only, `true` on each host): parallel t(16)/t(1) = "
        f"{median[('parallel-noop', SIZES[-1])] / median[('parallel-noop', 1)]:.2f}, "
        f"serial {median[('serial-noop', SIZES[-1])] / median[('serial-noop', 1)]:.2f}",
        f"- converge fan-out / SSH fan-out: {fan_out_ratio(median):.2f}",
        "",
        "The 16 \"instances\" are namespaces on this same 2-core machine, so each host's converge work (bash,",
        "the mount and docker stand-ins, nfs-ls, nginx -t and reload) adds up on 2 shared cores instead of",
        "running on 16 machines; the no-op column, measured in the same run on the same hosts, is what the SSH",
        "fan-out alone costs, and the ratio of the two growths is what converge adds (target <= 1.2).",
    ]
    record("inv converge: 1, 4, 8, 16 hosts, parallel and serial (bench/converge.py)", lines)


if __name__ == "__main__":
    sys.exit(main())
