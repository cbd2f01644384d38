"""`python -m sifu.confine [--keep CAP,...] -- COMMAND...`: the container's process tree keeps only the capabilities
the kernel broker and supervisord need, and no process in it gains privileges by exec (issue 13).

The image's ENTRYPOINT runs this as PID 1, which then execs dumb-init (still PID 1), which starts supervisord.
Elastic Beanstalk's single-container bundle
(Dockerrun.aws.json v1) has no field for --cap-drop or --security-opt (DOCKERRUN-V1-NO-LIMITS), so the
container starts with Docker's default capabilities; before supervisord exists this process
- drops from the bounding set every capability but CONTAINER_CAPABILITIES (nothing in the tree can ever regain
  one: not by a setuid-root binary, not by file capabilities),
- keeps only those in its effective and permitted sets, empties the inheritable and ambient ones,
- sets no_new_privs, which exec keeps for every descendant: a setuid binary run by a kernel runs as the kernel,
then execs the command. `docker exec` (the operator's) does not descend from it and keeps Docker's defaults.

Programs that drop root (sifu.launch's Sifu and Jupyter, sifu.kernel_limits' kernels) call shed_capabilities()
just before setuid: their bounding set is then empty too.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from typing import Iterable

# linux/capability.h
CAPABILITY_NUMBERS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
    "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11, "NET_ADMIN": 12,
    "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18,
    "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24,
    "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
    "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35, "BLOCK_SUSPEND": 36,
    "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}
# What the root part of the tree needs. Each was left out in turn (the real image, cap_drop ALL + the other seven,
# 2026-11-28), and what broke is noted; DAC_READ_SEARCH, not in Docker's defaults, was never needed.
CONTAINER_CAPABILITIES = (
    "CHOWN",  # the broker chowns its socket's directory, fresh folders, kernel dirs (without: the broker does not start)
    "DAC_OVERRIDE",  # ... walks and creates inside folders the student owns, 02770 (without: EACCES, no kernel starts)
    "FOWNER",  # ... and sets the modes of folders Sifu made (without: EPERM, no kernel starts)
    "FSETID",  # ... keeping the setgid bit of 02770 folders in Jupyter's group (without: Jupyter cannot reach the kernel)
    "KILL",  # supervisord and the broker signal programs and kernels of other uids (without: supervisord cannot stop Sifu)
    "SETGID", "SETUID",  # sifu.launch and the kernels' launcher become their users (without: Sifu and Jupyter do not start)
    "SETPCAP",  # ... and empty their bounding set first (without: they refuse to start)
)

PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAPABILITY_VERSION_3 = 0x20080522


class ConfineError(Exception):
    """A capability or no_new_privs could not be set: the tree must not start."""


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int, what: str, arg3: int = 0) -> int:
    result = _libc().prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if result < 0:
        raise ConfineError(f"{what}: {os.strerror(ctypes.get_errno())}")
    return result


def mask_of(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        if name not in CAPABILITY_NUMBERS:
            raise ConfineError(f"unknown capability {name!r}")
        mask |= 1 << CAPABILITY_NUMBERS[name]
    return mask


def names_of(mask: int) -> list[str]:
    return sorted(name for name, number in CAPABILITY_NUMBERS.items() if mask >> number & 1)


def last_capability() -> int:
    try:
        return int(open("/proc/sys/kernel/cap_last_cap").read())
    except (OSError, ValueError):
        return max(CAPABILITY_NUMBERS.values())


def drop_bounding(keep: int) -> None:
    """Drop every capability outside the mask `keep` from the bounding set (those already gone are skipped, so a
    container started with fewer needs no CAP_SETPCAP here)."""
    for number in range(last_capability() + 1):
        if keep >> number & 1 or _libc().prctl(PR_CAPBSET_READ, ctypes.c_ulong(number), 0, 0, 0) != 1:
            continue
        _prctl(PR_CAPBSET_DROP, number, f"dropping capability {number} from the bounding set")


def restrict_sets(keep: int) -> None:
    """Effective and permitted sets: only `keep`; inheritable and ambient: empty."""
    header, data = _Header(CAPABILITY_VERSION_3, 0), (_Data * 2)()
    libc = _libc()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise ConfineError(f"capget: {os.strerror(ctypes.get_errno())}")
    for index in range(2):
        part = keep >> (32 * index) & 0xFFFFFFFF
        data[index].effective &= part
        data[index].permitted &= part
        data[index].inheritable = 0
    if libc.capset(ctypes.byref(header), data) != 0:
        raise ConfineError(f"capset: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0) < 0 and ctypes.get_errno() != 22:
        raise ConfineError(f"clearing the ambient capabilities: {os.strerror(ctypes.get_errno())}")


def no_new_privs() -> None:
    """Nothing this process or its descendants exec gains privileges (setuid binaries, file capabilities)."""
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")


def shed_capabilities() -> None:
    """As root, just before becoming an unprivileged user: an empty bounding set (setuid keeps SETUID and SETGID
    for the calls themselves; becoming non-root then clears the effective and permitted sets)."""
    drop_bounding(0)
    restrict_sets(mask_of(("SETUID", "SETGID")))


def status_masks(path: str = "/proc/self/status") -> dict[str, int]:
    """CapInh, CapPrm, CapEff, CapBnd, CapAmb as integers, and NoNewPrivs."""
    found = {}
    for line in open(path).read().splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Cap"):
            found[key] = int(value.strip(), 16)
        elif key == "NoNewPrivs":
            found[key] = int(value.strip())
    return found


def confine(keep_names: Iterable[str] = CONTAINER_CAPABILITIES) -> None:
    keep = mask_of(keep_names)
    drop_bounding(keep)
    restrict_sets(keep)
    no_new_privs()
    status = status_masks()
    if status["CapBnd"] & ~keep or status["CapEff"] & ~keep or status.get("NoNewPrivs") != 1:
        raise ConfineError(f"still holding {names_of(status['CapBnd'] & ~keep)} or no_new_privs unset")


def parse_with_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """`OPTIONS -- COMMAND...` (the launchers here): the options parsed, and the command to exec."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("give the command after --")
    split = argv.index("--")
    return parser.parse_args(argv[:split]), argv[split + 1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sifu.confine", description=__doc__.splitlines()[0])
    parser.add_argument("--keep", default=",".join(CONTAINER_CAPABILITIES),
                        help="comma-separated capabilities to keep (default: %(default)s)")
    args, command = parse_with_command(parser, argv)
    try:
        confine([name for name in args.keep.split(",") if name])
    except (ConfineError, OSError) as exc:
        print(f"sifu.confine: refusing to start {command[0]}: {exc}", file=sys.stderr)
        return 2
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
