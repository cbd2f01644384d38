"""`python -m sifu.usage [NOTEBOOK_ROOT]` (default $SIFU_NOTEBOOK_ROOT): what each student uses now, as JSON on stdout (issue 13).

For every folder users/<name>/: its owner uid (in the image, the student's own kernel uid: docs/security.md),
the kernels running as that uid, the memory of all that uid's processes (RSS and PSS, KiB; PSS splits shared
pages fairly between processes) and the disk the folder takes (allocated blocks, KiB). Run it as root inside
the app container: other uids' smaps_rollup is readable only with CAP_SYS_PTRACE, which a container's root lacks,
or by the owner itself, so root reads each owner's PSS as that owner (without either, PSS is null).

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
                      "pss_kib": _kib(_fields(rollup).get("Pss")) if rollup is not None else None,
                      "pid": entry.name, "ids": (fields.get("Uid", ""), fields.get("Gid", ""))})
    if os.geteuid() == 0 and proc == Path("/proc"):
        _pss_as_owners([p for p in found if p["pss_kib"] is None])
    for p in found:
        del p["pid"], p["ids"]
    return found


def _pss_as_owners(unread: list[dict[str, Any]]) -> None:
    """Fill in PSS that root could not read. In a container root has no CAP_SYS_PTRACE, and smaps_rollup of another
    uid's process needs it (ptrace read access); a process whose uids and gids are all the reader's own needs
    none. So for each owner (all four uids alike, all four gids alike) a child drops to exactly that uid and gid
    (CAP_SETUID/SETGID, which the broker needs anyway) and reads their processes' PSS."""
    owners: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for p in unread:
        uids, gids = (set(ids.split()) for ids in p["ids"])
        if len(uids) == 1 and len(gids) == 1:
            owners.setdefault((int(uids.pop()), int(gids.pop())), []).append(p)
    for (uid, gid), mine in owners.items():
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover (the child exits without returning)
            try:
                os.close(reader)
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
                pss = {p["pid"]: (_fields(r).get("Pss") if (r := _read(Path("/proc", p["pid"], "smaps_rollup"))) else None)
                       for p in mine}
                os.write(writer, json.dumps(pss).encode())
            finally:
                os._exit(0)
        os.close(writer)
        with os.fdopen(reader, "rb") as pipe:
            answer = pipe.read()
        os.waitpid(child, 0)
        pss = json.loads(answer) if answer else {}
        for p in mine:
            if pss.get(p["pid"]) is not None:
                p["pss_kib"] = _kib(pss[p["pid"]])


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
