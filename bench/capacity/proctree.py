"""Process trees from /proc: descendants, proportional memory (PSS) and CPU time, for the capacity benches.

PSS (smaps_rollup) splits every shared page among the processes mapping it, so the PSS of a set of processes adds
up to what they cost the machine: a kernel's own pages plus its share of the libraries it shares with others.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 (state) is index 0


def descendants(roots: list[int]) -> list[int]:
    """The roots and every live process under them (by parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid for pid in roots if Path(f"/proc/{pid}").exists()]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def container_processes(init_pid: int) -> list[int]:
    """A container's processes as the host sees them, from its init, plus the containerd shim that runs it (one
    per container: part of what a container costs)."""
    shim = parent(init_pid)
    return descendants([shim if shim and "containerd-shim" in cmdline(shim) else init_pid])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields and fields[0] != "Z":
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def kill_survivors(pids: list[int]) -> None:
    """SIGKILL whatever of these is still alive (after a graceful stop), and reap those that are our children."""
    for pid in pids:
        fields = _stat_fields(pid)
        if fields and fields[0] != "Z":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
