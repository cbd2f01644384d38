"""What students use on each instance, for `inv status`: parsing `python -m sifu.usage` (pure; nothing here runs
anything; executor.student_usage sends commands.student_usage and hands the output here).

sifu.usage reports every folder under users/ of the notebook volume, with the figures of that folder owner's
processes on the instance it ran on. The volume is shared, so every instance lists every student; a student
is "on" an instance when their uid has processes there (in the image their kernels run as their own uid).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StudentFigures:
    """One student's figures as sifu.usage printed them (KiB; pss_kib None where it could not be read)."""

    name: str
    uid: int
    kernels: int
    processes: int
    rss_kib: int
    pss_kib: int | None
    disk_kib: int

    @property
    def memory_kib(self) -> int:
        """PSS (shared pages split fairly) when known, else RSS."""
        return self.rss_kib if self.pss_kib is None else self.pss_kib


@dataclass
class InstanceUsage:
    instance: str  # the EC2 instance id (or the host, for hosts named on the command line)
    host: str  # where SSH went
    students: dict[str, StudentFigures] = field(default_factory=dict)
    error: str = ""  # unreachable, no app container, or no report

    @property
    def active(self) -> list[StudentFigures]:
        """Students with processes on this instance, by name."""
        return [f for _, f in sorted(self.students.items()) if f.processes]

    def _per_uid(self) -> list[StudentFigures]:
        # Process mode: every folder is Jupyter's own uid, so the same processes are reported under every name.
        by_uid: dict[int, StudentFigures] = {}
        for figures in self.active:
            by_uid.setdefault(figures.uid, figures)
        return list(by_uid.values())

    @property
    def kernels(self) -> int:
        return sum(f.kernels for f in self._per_uid())

    @property
    def memory_kib(self) -> int:
        return sum(f.memory_kib for f in self._per_uid())


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def parse(instance: str, host: str, exit_code: int, stdout: str, stderr: str) -> InstanceUsage:
    """One instance's answer (exit -1: not reached, stderr says why) as an InstanceUsage; never raises."""
    found = InstanceUsage(instance, host)
    if exit_code == -1:
        found.error = stderr.strip() or "unreachable"
        return found
    if exit_code != 0:
        found.error = f"exit {exit_code}: {_tail(stderr) or _tail(stdout) or 'no output'}"
        return found
    try:
        students = json.loads(stdout)["students"]
        found.students = {name: StudentFigures(name, int(f["uid"]), int(f["kernels"]), int(f["processes"]),
                                               int(f["rss_kib"]), None if f["pss_kib"] is None else int(f["pss_kib"]),
                                               int(f["disk_kib"]))
                          for name, f in students.items()}
    except (ValueError, KeyError, TypeError) as exc:
        found.error = f"sifu.usage gave no report ({type(exc).__name__}: {exc}): {_tail(stdout) or 'no output'}"
    return found


def instance_rows(usages: list[InstanceUsage]) -> list[dict]:
    """Per instance: active students, kernels and memory (KiB), or why there are no figures."""
    return [{"instance": u.instance, "host": u.host, "error": u.error or None,
             "students": None if u.error else len(u.active), "kernels": None if u.error else u.kernels,
             "memory_kib": None if u.error else u.memory_kib} for u in usages]


def student_rows(usages: list[InstanceUsage]) -> list[dict]:
    """Per student and instance they have processes on (instance None for a student with none anywhere); disk
    is their folder on the shared volume, the same from every instance."""
    reached = [u for u in usages if not u.error]
    names = sorted({name for u in reached for name in u.students})
    rows = []
    for name in names:
        disk = next(u.students[name].disk_kib for u in reached if name in u.students)
        on = [(u.instance, u.students[name]) for u in reached if name in u.students and u.students[name].processes]
        for instance, f in on or [(None, None)]:
            rows.append({"student": name, "instance": instance, "kernels": f.kernels if f else 0,
                         "processes": f.processes if f else 0, "rss_kib": f.rss_kib if f else 0,
                         "pss_kib": f.pss_kib if f else 0, "memory_kib": f.memory_kib if f else 0,
                         "disk_kib": disk})
    return rows


def summary(usages: list[InstanceUsage]) -> dict:
    """What `inv status --json` shows under "usage"."""
    return {"instances": instance_rows(usages), "students": student_rows(usages)}


def mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"
