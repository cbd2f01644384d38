"""`python -m sifu.kernel_limits -- KERNEL COMMAND...`: exec a student's kernel under resource limits.

Jupyter starts every kernel through this (sifu.jupyter.LimitedKernelManager), so one student's cell cannot
take all the instance's memory, write a file that fills the disk, exhaust file descriptors, or dump core;
and when memory runs out anyway, the kernel's oom_score_adj makes the OOM killer take a kernel first,
never Jupyter or Sifu. The limits are set in this process and exec keeps them; an unprivileged process can
lower them further but never raise a hard limit again.

Until kernels run as each student's own uid, RLIMIT_NPROC counts every process of Jupyter's user: it is set
high enough for many kernels and stops a fork bomb before it takes the whole instance's pid space.
"""

from __future__ import annotations

import os
import resource
import sys

GIB = 1024 ** 3
LIMITS = {
    "RLIMIT_AS": 4 * GIB,  # address space: numerical libraries reserve more than they touch
    "RLIMIT_FSIZE": 1 * GIB,  # any one file written
    "RLIMIT_NOFILE": 1024,
    "RLIMIT_NPROC": 2048,
    "RLIMIT_CORE": 0,
}
OOM_SCORE_ADJ = 1000  # the first to go when the instance runs out of memory
KERNEL_UMASK = 0o007  # the broker's kernels: ipc sockets and files stay usable by Jupyter's group (setgid dirs)


def apply_limits() -> None:
    for name, value in LIMITS.items():
        limit = getattr(resource, name, None)
        if limit is None:
            continue  # not on this platform (process-mode local runs on macOS)
        soft, hard = resource.getrlimit(limit)
        target = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (target, target))
    try:
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write(str(OOM_SCORE_ADJ))
    except OSError:
        pass  # not Linux


PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4


def _prctl(option: int, value: int) -> None:
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def no_new_privs() -> None:
    """Nothing the kernel execs gains privileges (setuid binaries, file capabilities)."""
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def become_student(uid: int) -> None:
    """As root (the kernel broker's child): an empty bounding set, no groups, then the student's uid as uid and gid.
    Done here rather than by the broker's Popen(user=...), which changes uid before anything else could run: an
    empty bounding set needs CAP_SETPCAP, which only root holds."""
    from sifu.confine import shed_capabilities

    shed_capabilities()
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    # Changing uid made the process non-dumpable, so its /proc files are root's: writing oom_score_adj (apply_limits)
    # failed silently. An exec would make it dumpable again; a kernel forked by sifu.kernel_zygote has none, so say it
    # here: the process holds nothing but what its student may read.
    _prctl(PR_SET_DUMPABLE, 1)


def confine_kernel(uid: int) -> None:
    """As root, for the kernel broker's kernels (exec'd through main, or forked by sifu.kernel_zygote): the student's
    uid with no capability, no_new_privs, then the limits."""
    if uid == 0:
        raise ValueError("a kernel never runs as root")
    become_student(uid)
    no_new_privs()
    apply_limits()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    privileges = argv[:1] == ["--no-new-privs"]  # the kernel broker's kernels (sifu/kernel_broker.py)
    argv = argv[1:] if privileges else argv
    uid = None
    if argv[:1] == ["--user"] and len(argv) > 1 and argv[1].isdigit():
        uid, argv = int(argv[1]), argv[2:]
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command or (uid is not None and (uid == 0 or os.geteuid() != 0)):
        print("usage: python -m sifu.kernel_limits [--no-new-privs] [--user UID (not 0; as root)] -- KERNEL COMMAND...",
              file=sys.stderr)
        return 2
    if uid is not None:
        become_student(uid)
    if privileges:
        no_new_privs()
    apply_limits()
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
