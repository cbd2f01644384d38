"""How long `inv --list` takes, against Invoke listing one trivial task in the same run.

Target: at most 0.5 s. The ratio shows what our task modules add on top of Invoke itself.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.record import record, summary  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15


def timed(args: list[str], cwd: Path) -> list[float]:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    inv = str(Path(sys.executable).parent / "inv")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "tasks.py").write_text("from invoke import task\n\n@task\ndef noop(c):\n    \"\"\"Do nothing.\"\"\"\n")
        baseline = summary(timed([inv, "--list"], Path(tmp)))
    ours = summary(timed([inv, "--search-root", str(ROOT), "--list"], ROOT))
    record("inv --list", [
        f"- ours: p50 {ours['p50']:.3f} s, p99 {ours['p99']:.3f} s ({RUNS} runs; target ≤ 0.5 s)",
        f"- baseline (Invoke with one trivial task): p50 {baseline['p50']:.3f} s",
        f"- ratio ours/baseline (p50): {ours['p50'] / baseline['p50']:.2f}",
    ])


if __name__ == "__main__":
    main()
