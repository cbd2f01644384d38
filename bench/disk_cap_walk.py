"""Benchmark: what the kernel broker's disk cap costs, one walk of a student's folder of 10,000 files (issue 13).

Run: /path/to/venv/bin/python bench/disk_cap_walk.py [--files 10000] [--rounds 15]
The broker counts a student's entries and allocated bytes with sifu.storage.folder_usage (descriptors, no symlink
followed) when a kernel starts and every jupyter.disk_check_interval seconds for each student with a kernel running.
Baselines in the same run, on the same tree: `du -s` (coreutils, the same lstat of every entry) and a listing of
names only (os.walk without a stat, the least any walk does). Local disk: on EFS each entry's attributes come with
READDIRPLUS and the attribute cache, so the walk is network-bound there; the ratio to `du -s` is what carries over.
Appends a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.record import record  # noqa: E402
from sifu import storage  # noqa: E402


def make_tree(top: Path, files: int) -> None:
    """`files` small notebooks-to-be in folders of 100, as a student's course folders would hold them."""
    for n in range(files):
        folder = top / f"course-{n // 100}"
        folder.mkdir(exist_ok=True)
        (folder / f"file-{n}.ipynb").write_text("{}")


def walk_usage(top: Path) -> None:
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        storage.folder_usage(fd)
    finally:
        os.close(fd)


def du(top: Path) -> None:
    subprocess.run(["du", "-s", str(top)], check=True, capture_output=True)


def names_only(top: Path) -> None:
    for _directory, _subdirs, _files in os.walk(top):
        pass


def timed(action, top: Path, rounds: int) -> list[float]:
    action(top)  # warm: the dentry and inode caches, as for a folder the broker walked a moment ago
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action(top)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sifu-bench-disk-") as work:
        top = Path(work) / "alice"
        top.mkdir()
        make_tree(top, args.files)
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        usage = storage.folder_usage(fd)
        os.close(fd)
        results = {}
        for name, action in (("folder_usage (the broker)", walk_usage), ("du -s", du), ("names only (os.walk)", names_only)):
            results[name] = statistics.median(timed(action, top, args.rounds))
    broker = results["folder_usage (the broker)"]
    lines = [f"One walk of a student's folder: {usage.entries:,} entries ({args.files:,} files in folders of 100), "
             f"{usage.bytes // 1024:,} KiB allocated, local disk, warm caches, median of {args.rounds}.", "",
             "| walk | median (ms) | / folder_usage |", "|---|---:|---:|"]
    for name, seconds in results.items():
        lines.append(f"| {name} | {seconds * 1000:.1f} | {seconds / broker:.2f} |")
    lines += ["", f"- folder_usage / du -s: {broker / results['du -s']:.2f}; at the default 30 s interval one student "
              f"with a kernel running costs {broker / 30 * 100:.2f} % of one core"]
    record("Disk cap: one walk of a 10,000-file folder (bench/disk_cap_walk.py)", lines)


if __name__ == "__main__":
    main()
