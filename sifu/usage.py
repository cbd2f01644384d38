"""`python -m sifu.usage [NOTEBOOK_ROOT]` (default $SIFU_NOTEBOOK_ROOT): what each student uses now, as JSON on stdout (issue 13).

For every folder users/<name>/: its owner uid (in the image, the student's own kernel uid: docs/security.md),
the kernels running as that uid, the memory of all that uid's processes (RSS and PSS, KiB; PSS splits shared
pages fairly between processes) and the disk the folder takes (allocated blocks, KiB). Run it as root inside
the app container: other uids' smaps_rollup is readable by root only (without it, PSS is null).

In process mode every folder is Jupyter's own user's, so the per-uid figures are that one user's, repeated.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from sifu import storage

def _fields(text: str) -> dict[str, str]:
    """`Key:   value` lines (/proc/<pid>/status, smaps_rollup) as a dict."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            found[key.strip()] = value.strip()
    return found


def _kib(value: str | None) -> int:
    return int(value.split()[0]) if value else 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None  # gone meanwhile, or not ours to read


def processes(proc: Path = Path("/proc")) -> list[dict[str, Any]]:
    """Every process's real uid, whether it is a kernel, and its RSS / PSS in KiB (PSS None if unreadable)."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        status = _read(entry / "status")
        if status is None:
            continue
        fields = _fields(status)
        cmdline = (_read(entry / "cmdline") or "").split("\0")
        rollup = _read(entry / "smaps_rollup")
        found.append({"uid": int(fields.get("Uid", "-1").split()[0]),
                      "kernel": any("ipykernel" in part for part in cmdline),
                      "rss_kib": _kib(fields.get("VmRSS")),
                      "pss_kib": _kib(_fields(rollup).get("Pss")) if rollup is not None else None})
    return found


def disk_kib(folder: Path) -> int:
    """Blocks allocated to the folder and everything in it (symlinks not followed)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return 0
    try:
        return storage.folder_usage(fd).bytes // 1024
    finally:
        os.close(fd)


def usage(root: Path, proc: Path = Path("/proc")) -> dict[str, Any]:
    running = processes(proc)
    students = {}
    users = root / "users"
    for folder in sorted(users.iterdir()) if users.is_dir() else []:
        if not folder.is_dir() or folder.is_symlink():
            continue
        uid = folder.stat().st_uid
        mine = [p for p in running if p["uid"] == uid]
        pss = [p["pss_kib"] for p in mine]
        students[folder.name] = {"uid": uid, "kernels": sum(p["kernel"] for p in mine),
                                 "processes": len(mine), "rss_kib": sum(p["rss_kib"] for p in mine),
                                 "pss_kib": None if None in pss else sum(pss), "disk_kib": disk_kib(folder)}
    return {"notebook_root": str(root), "students": students}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = argv[0] if argv else os.environ.get("SIFU_NOTEBOOK_ROOT")  # the container's environment names it
    if not root:
        print("usage: python -m sifu.usage [NOTEBOOK_ROOT] (or SIFU_NOTEBOOK_ROOT set)", file=sys.stderr)
        return 2
    print(json.dumps(usage(Path(root)), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
