"""`python -m sifu.kernel_broker`: the root-owned broker that starts, signals and stops students' kernels, each as
the student's own uid (issue 13: a cell reaches nothing of another student's).

Jupyter (its provisioner, sifu/kernel_provisioner.py) is the only client: the Unix socket is in a directory only
root and Jupyter's group may enter, and every connection's peer uid (SO_PEERCRED) must be Jupyter's. The broker
trusts Jupyter with nothing that picks a uid or a command:
- the student is the `users/<name>/` that the kernel's working directory really is in (symlinks resolved);
- the uid is the one Sifu allocated for that name (GET /internal/student-uids/<name> on loopback; the broker
  first checks that whatever listens on Sifu's port is Sifu's user, so a kernel cannot stand in for Sifu while
  it restarts). A folder whose owner is neither that uid nor Sifu's or Jupyter's (a fresh copy) is refused;
- the command is fixed (this venv's python -m ipykernel_launcher -f CONNECTION_FILE --ext=sifu.kernel_streams,
  under sifu.kernel_limits), or the same kernel app with the same options forked from the broker's zygote
  (sifu/kernel_zygote.py: ipykernel already imported), which builds the same walls in the child before the app
  starts. The zygote starts with the first kernel (that kernel waits for its imports), not with the broker, and
  is stopped once the broker has had no kernel for --zygote-idle-seconds: an instance with no student holds no
  zygote (issue 14: its fixed memory);
- the environment is the kernel allow-list (sifu.launch.kernel_environment) of what Jupyter sends, with the
  broker's own HOME and TMPDIR.
Each kernel starts in its own session (setsid), with an empty capability bounding set, no supplementary groups,
its own uid as gid, no_new_privs, the hard rlimits and oom_score_adj of sifu.kernel_limits, umask 007, and its ipc sockets and
connection file in <kernel dir>/<uid>/ (owner the student, group Jupyter's, 02770). When a kernel is released
and its uid has no other kernel here, everything that uid still runs is killed (a setsid child does not
outlive culling) and its home (on the container's own disk) is emptied.
What a student keeps (their folder and their kernels' home) is capped in bytes and entries (DiskCap): over the
cap a kernel does not start, and a check every few seconds kills the kernels of a student who went over it,
telling them why in the running cell (poll's `stopped_for`, shown by sifu/kernel_memory.py).

Why ask Sifu rather than read the database: the broker runs as root, and reading the database would put the
database password (RDS_*) or the SQLite file into root's process, with a SQL driver; one loopback GET for one
integer keeps the broker free of secrets, and Sifu stays the table's only owner.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import socketserver
import stat
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from sifu import names, storage
from sifu.kernel_limits import KERNEL_UMASK
from sifu.kernel_zygote import ForkedKernel, Zygote, ZygoteGone, launcher_argv
from sifu.launch import kernel_environment
from sifu.uids import UID_BASE, UID_LIMIT

STUDENT_DIR_MODE = 0o2770
KERNEL_DIR_MODE = 0o2770
SOCKET_DIR_MODE = 0o750
# Longer than a kernel restart or a switch between notebooks (seconds to minutes), short against the hour Jupyter
# waits before it culls an idle kernel (jupyter.cull_idle_timeout): once a class's kernels are gone, the zygote's
# ~36 MiB (PSS) go too. The next kernel then pays for a new zygote's imports: about 0.2 s of CPU and of wall.
ZYGOTE_IDLE_SECONDS = 600.0


class Refused(Exception):
    """The request is refused; the message is what the student sees."""


@dataclass(frozen=True)
class DiskCap:
    """What one student may keep in their folder and their kernel directory (its home, connection files and
    anything else their kernels write there) together: bytes allocated, and entries
    (files, folders, links); 0 is no cap. EFS has no quotas, so the broker counts: when a kernel starts (the walk
    that hands the folder over) and every `interval` seconds while the student has kernels running."""
    max_bytes: int = 0
    max_entries: int = 0
    interval: float = 30.0

    def over(self, usage: storage.Usage) -> str | None:
        """None within the cap; otherwise what the student is told: what they keep, the cap, what to do."""
        if (not self.max_bytes or usage.bytes <= self.max_bytes) and (not self.max_entries or usage.entries <= self.max_entries):
            return None
        caps = [f"{self.max_bytes / MIB:,.0f} MiB" if self.max_bytes else "",
                f"{self.max_entries:,} files and folders" if self.max_entries else ""]
        return (f"Your files take {usage.bytes / MIB:,.1f} MiB in {usage.entries:,} files and folders; a student may keep "
                f"at most {' and '.join(c for c in caps if c)}. Your kernel cannot run until you delete some of your "
                "files (File > Open lists them); then start it again.")


MIB = 2 ** 20


@dataclass(frozen=True)
class Site:
    notebook_root: Path
    kernel_dir: Path
    sifu_url: str
    sifu_uid: int
    jupyter_uid: int
    jupyter_gid: int
    python: str
    disk_cap: DiskCap = field(default_factory=DiskCap)
    shm_dir: Path = Path("/dev/shm")
    zygote: bool = True  # fork kernels from a zygote (sifu/kernel_zygote.py) rather than exec each one
    zygote_idle: float = ZYGOTE_IDLE_SECONDS  # with no kernel that long, the zygote is stopped (0: never)


@dataclass
class Kernel:
    process: subprocess.Popen | ForkedKernel
    uid: int
    folder: Path | None = None
    stopped_for: str | None = None  # why the broker killed it (the disk cap), for the student's cell


# --- who is the student, and which uid -----------------------------------------------------------------------


def student_of(site: Site, cwd: str) -> tuple[str, Path]:
    """The student whose folder `cwd` really is in, and that folder."""
    users = os.path.realpath(site.notebook_root / "users")
    real = os.path.realpath(cwd)
    parts = os.path.relpath(real, users).split(os.sep)
    if not parts or parts[0] in ("", ".", "..") or real == users:
        raise Refused("a kernel starts only in a student's own folder")
    try:
        name = names.check_name("username", parts[0])
    except names.InvalidName:
        raise Refused("a kernel starts only in a student's own folder") from None
    return name, Path(users) / name


def listeners_uids(port: int, tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> set[int]:
    """The uids of every socket listening on TCP `port` (any address)."""
    found: set[int] = set()
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 7 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(int(fields[7]))
    return found


def uid_from_sifu(site: Site, name: str) -> int:
    # Imported at the first kernel start, not at the broker's: urllib.request (http.client, email, ssl) was about 0.01 s of
    # the broker's start-up CPU, spent while Sifu and Jupyter start on the same cores.
    import urllib.error
    import urllib.request

    port = int(site.sifu_url.rsplit(":", 1)[1].split("/")[0])
    if listeners_uids(port) != {site.sifu_uid}:
        raise Refused("Sifu is not answering; try again in a moment")
    try:
        with urllib.request.urlopen(f"{site.sifu_url}/internal/student-uids/{name}", timeout=5) as reply:
            uid = json.loads(reply.read()).get("uid")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise Refused("you have no kernel user yet: open the notebook from your course again") from None
        raise Refused("Sifu is not answering; try again in a moment") from None
    except (OSError, ValueError):
        raise Refused("Sifu is not answering; try again in a moment") from None
    if not isinstance(uid, int) or not UID_BASE < uid <= UID_LIMIT:
        raise Refused("your kernel user is not valid; ask the course team")
    return uid


def claim_folder(site: Site, folder: Path, uid: int) -> storage.Usage:
    """The folder must be the student's (or a fresh one Sifu or Jupyter made, which becomes theirs, with what is
    in it). Walked by file descriptors without following symlinks, so a kernel swapping a directory for a
    symlink meanwhile cannot point root's chown elsewhere. Returns what the folder holds (the same walk)."""
    services = (site.sifu_uid, site.jupyter_uid)

    def hand_over(dir_fd: int, name: str, info: os.stat_result) -> None:
        if info.st_uid in services and not stat.S_ISLNK(info.st_mode):
            os.chown(name, uid, -1, dir_fd=dir_fd, follow_symlinks=False)

    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        owner = os.fstat(fd).st_uid
        if owner != uid and owner not in services:
            raise Refused("your folder belongs to another kernel user; ask the course team")
        if owner in services:
            os.fchown(fd, uid, -1)
        # Walked on every start, not only the first: Sifu keeps adding copies (new courses, new files) to a
        # folder the student already owns, and those must become the student's too.
        usage = storage.folder_usage(fd, hand_over)
        if owner != uid:
            os.fchmod(fd, STUDENT_DIR_MODE)
        return usage
    finally:
        os.close(fd)


def usage_of(*folders: Path) -> storage.Usage:
    """What the folders hold together (a folder that is missing, or a symlink, holds nothing)."""
    total = storage.Usage(0, 0)
    for folder in folders:
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            total += storage.folder_usage(fd)
        finally:
            os.close(fd)
    return total


def kernel_dir_of(site: Site, uid: int) -> Path:
    """<kernel dir>/<uid>/ (connection files, ipc sockets) with home/ and tmp/ for that uid's kernels."""
    directory = site.kernel_dir / str(uid)
    for path, owner, group, mode in ((directory, uid, site.jupyter_gid, KERNEL_DIR_MODE),
                                     (directory / "home", uid, uid, 0o700), (directory / "home" / "tmp", uid, uid, 0o700)):
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fchown(fd, owner, group)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    return directory


def hand_over_connection_file(site: Site, directory: Path, connection_file: str, uid: int) -> str:
    path = Path(connection_file)
    if path.parent != directory or not path.name.startswith("kernel-") or not path.name.endswith(".json"):
        raise Refused("the connection file is not in the student's kernel directory")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused("the connection file is not a regular file")
        os.fchown(fd, uid, site.jupyter_gid)
        os.fchmod(fd, 0o640)
    finally:
        os.close(fd)
    return str(path)


# --- starting and stopping ---------------------------------------------------------------------------------


def kernel_command(site: Site, connection_file: str, uid: int) -> list[str]:
    """Started as root, in the student's folder: -I keeps that folder (and PYTHON* variables) off the launcher's
    sys.path, so a student's sifu/kernel_limits.py there cannot stand in for ours. The launcher becomes `uid`."""
    return [site.python, "-I", "-m", "sifu.kernel_limits", "--no-new-privs", "--user", str(uid), "--",
            site.python, "-m", *launcher_argv(connection_file)]


def kernel_env(env: Mapping[str, str], home: Path) -> dict[str, str]:
    session = env.get("JPY_SESSION_NAME", "")
    return kernel_environment(env) | {"HOME": str(home), "TMPDIR": str(home / "tmp"),
                                      "JPY_SESSION_NAME": session}


def zygote_env() -> dict[str, str]:
    """The zygote's own environment: the broker's (already an allow-list, sifu.launch) without what would change
    how its interpreter starts; each kernel then replaces it with its own (kernel_env)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PYTHON") or name in
            ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONNOUSERSITE")}


def clear_scratch(site: Site, uid: int) -> None:
    """Once the uid has no kernel left (and no process: kill_uid ran): empty its kernel home (its TMPDIR too),
    which is on the container's own disk and lost with the container anyway, and remove what it left in the
    shared memory folder (/dev/shm: 64 MiB for the whole container; files there are 0660 with the uid as group,
    so no other student reads them, but one could fill it). rmtree works by descriptors here and does not follow
    symlinks."""
    try:
        with os.scandir(site.shm_dir) as shared:
            for entry in shared:
                if entry.stat(follow_symlinks=False).st_uid == uid and not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)
    except OSError:
        pass
    home = site.kernel_dir / str(uid) / "home"
    try:
        names_in_home = os.listdir(home)
    except OSError:
        return
    for name in names_in_home:
        path = home / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    kernel_dir_of(site, uid)  # home/tmp again


def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid`: a child that becomes the uid and sends kill(-1) reaches all of them at once."""
    if uid <= UID_BASE:
        return
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # the child only calls async-signal-safe functions, then _exit
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            os._exit(0)
        os.waitpid(pid, 0)


def zygote_retires(running: bool, busy: bool, busy_at: float, now: float, idle_seconds: float) -> bool:
    """Whether to stop the zygote now: it runs, no kernel is running or starting (`busy`), none has been since
    `busy_at` for `idle_seconds` (0: the zygote is kept)."""
    return running and not busy and idle_seconds > 0 and now - busy_at >= idle_seconds


class Broker:
    def __init__(self, site: Site):
        self.site = site
        self.kernels: dict[int, Kernel] = {}
        self.lock = threading.Lock()
        self.zygote: Zygote | None = None
        self.zygote_lock = threading.Lock()
        self.zygote_failed = False  # it could not start: kernels are exec'd from then on (a dead one is replaced)
        self.student_locks: dict[int, threading.Lock] = {}  # per uid: a start and a release of one student in turn
        self.zygote_users = 0  # kernel starts using the zygote now: it is not stopped meanwhile (under zygote_lock)
        self.busy_at = time.monotonic()  # when a kernel last ran or started here (the zygote's idle time counts from it)

    def prepare(self, request: Mapping[str, Any]) -> dict[str, Any]:
        name, folder = student_of(self.site, str(request.get("cwd", "")))
        uid = uid_from_sifu(self.site, name)
        usage = claim_folder(self.site, folder, uid)
        directory = kernel_dir_of(self.site, uid)
        over = self.site.disk_cap.over(usage + usage_of(directory))  # the home, and whatever else it put there
        if over:
            raise Refused(over)
        return {"uid": uid, "kernel_dir": str(directory), "folder": str(folder)}

    def start(self, request: Mapping[str, Any]) -> dict[str, Any]:
        prepared = self.prepare(request)
        uid, directory = prepared["uid"], Path(prepared["kernel_dir"])
        connection_file = hand_over_connection_file(self.site, directory, str(request.get("connection_file", "")), uid)
        env = request.get("env") if isinstance(request.get("env"), dict) else {}
        cwd = os.path.realpath(str(request["cwd"]))
        env = kernel_env({str(k): str(v) for k, v in env.items()}, directory / "home")
        with self.student_lock(uid):  # not while a release of this student's last kernel clears up after it
            process = self._fork(uid, cwd, connection_file, env)
            if process is None:
                process = subprocess.Popen(
                    kernel_command(self.site, connection_file, uid), cwd=cwd, env=env,
                    start_new_session=True, umask=KERNEL_UMASK, stdin=subprocess.DEVNULL, close_fds=True)
            with self.lock:
                self.kernels[process.pid] = Kernel(process, uid, Path(prepared["folder"]))
        return {"pid": process.pid, "uid": uid}

    def student_lock(self, uid: int) -> threading.Lock:
        """Held by a kernel start from its fork until the kernel is registered, and by a release while it decides
        whether that was the student's last kernel and clears up: otherwise a release could count a kernel being
        started (a second notebook of the same student) as none, and kill it with every process of the uid."""
        with self.lock:
            return self.student_locks.setdefault(uid, threading.Lock())

    def _fork(self, uid: int, cwd: str, connection_file: str, env: dict[str, str]) -> ForkedKernel | None:
        """The kernel forked from the zygote (started, or started again after it died, on demand); None when there
        is no zygote, so the kernel is exec'd. OSError when the child could not build its walls."""
        if not self.site.zygote:
            return None
        request = {"uid": uid, "cwd": cwd, "connection_file": connection_file, "env": env}
        for _ in range(2):  # a zygote found dead is replaced once
            with self.zygote_in_use() as zygote:
                if zygote is None:
                    return None
                try:
                    return zygote.start(request)
                except ZygoteGone:
                    continue
        return None

    @contextmanager
    def zygote_in_use(self) -> Iterator[Zygote | None]:
        """The running zygote, started (again) if there is none, and not retired while in use; None if it cannot
        start (kernels are exec'd)."""
        with self.zygote_lock:
            if not self.zygote_failed and (self.zygote is None or not self.zygote.alive):
                try:
                    self.zygote = Zygote(self.site.python, zygote_env())
                except (ZygoteGone, OSError) as exc:
                    print(f"sifu.kernel_broker: kernels are exec'd: {exc}", file=sys.stderr, flush=True)
                    self.zygote, self.zygote_failed = None, True
            zygote = self.zygote
            self.zygote_users += 1
        try:
            yield zygote
        finally:
            with self.zygote_lock:
                self.zygote_users -= 1
                self.busy_at = time.monotonic()

    def retire_idle_zygote(self) -> None:
        """Stop the zygote once the broker has had no kernel for site.zygote_idle seconds; the next kernel start
        starts a new one. Skipped while the lock is held (a zygote starting, or a kernel taking it): busy anyway."""
        if not self.zygote_lock.acquire(blocking=False):
            return
        try:
            now, zygote = time.monotonic(), self.zygote
            with self.lock:
                kernels = any(kernel.process.poll() is None for kernel in self.kernels.values())
            # A forked child that has not exited (one refused at its walls, say) dies with the zygote: it counts too.
            busy = kernels or self.zygote_users > 0 or (zygote is not None and zygote.forked_running())
            if busy:
                self.busy_at = now
            if not zygote_retires(zygote is not None and zygote.alive, busy, self.busy_at, now, self.site.zygote_idle):
                return
            self.zygote = None  # from here no start can take it
        finally:
            self.zygote_lock.release()
        print("sifu.kernel_broker: no kernel for a while: the kernel zygote stops until the next one", file=sys.stderr, flush=True)
        zygote.stop()

    def _kernel(self, request: Mapping[str, Any]) -> Kernel:
        with self.lock:
            kernel = self.kernels.get(request.get("pid"))  # only kernels this broker started
        if kernel is None:
            raise Refused("no such kernel")
        return kernel

    def poll(self, request: Mapping[str, Any]) -> dict[str, Any]:
        kernel = self._kernel(request)
        return {"returncode": kernel.process.poll(), "stopped_for": kernel.stopped_for}

    def signal(self, request: Mapping[str, Any]) -> dict[str, Any]:
        kernel = self._kernel(request)
        signum = int(request.get("signum", 0))
        if signum not in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL, 0):
            raise Refused("that signal is not sent to kernels")
        if kernel.process.poll() is None:
            try:
                os.killpg(kernel.process.pid, signum)
            except ProcessLookupError:
                pass
        return {"returncode": kernel.process.poll()}

    def release(self, request: Mapping[str, Any]) -> dict[str, Any]:
        kernel = self._kernel(request)
        try:
            os.killpg(kernel.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kernel.process.wait()
        with self.student_lock(kernel.uid):
            with self.lock:
                self.kernels.pop(kernel.process.pid, None)
                others = any(k.uid == kernel.uid for k in self.kernels.values())
            if not others:
                kill_uid(kernel.uid)
                clear_scratch(self.site, kernel.uid)
        return {"returncode": kernel.process.returncode}

    def enforce_disk_cap(self) -> None:
        """Every student with kernels running here: over the cap, all their kernels are killed (Jupyter restarts
        them, and the restart is refused with the same message until they delete files)."""
        with self.lock:
            students: dict[int, list[Kernel]] = {}
            for kernel in self.kernels.values():
                if kernel.process.poll() is None and kernel.folder is not None:
                    students.setdefault(kernel.uid, []).append(kernel)
        for uid, kernels in students.items():
            over = self.site.disk_cap.over(usage_of(kernels[0].folder, self.site.kernel_dir / str(uid)))
            if over is None:
                continue
            for kernel in kernels:
                kernel.stopped_for = over
                try:
                    os.killpg(kernel.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            kill_uid(uid)

    def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        operations = {"prepare": self.prepare, "start": self.start, "poll": self.poll, "signal": self.signal,
                      "release": self.release}
        operation = operations.get(request.get("op"))
        if operation is None:
            return {"error": "unknown operation"}
        try:
            return {"ok": True, **operation(request)}
        except Refused as exc:
            return {"error": str(exc)}
        except OSError as exc:
            return {"error": f"the kernel could not be started ({exc.strerror})"}


# --- the socket ---------------------------------------------------------------------------------------------


def peer_uid(connection: socket.socket) -> int:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


class Server(socketserver.ThreadingUnixStreamServer):
    # Every kernel's restarter polls here every few seconds, and a class starts its kernels together: with
    # socketserver's backlog of 5, a connect beyond it while the accept loop lagged (a busy machine) failed at once
    # (a Unix socket does not wait, unlike TCP) and the student got "The kernel service is not running" (503).
    request_queue_size = socket.SOMAXCONN
    daemon_threads = True


def serve(broker: Broker, path: Path, client_uid: int, client_gid: int) -> socketserver.BaseServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            if peer_uid(self.connection) != client_uid:
                return  # only Jupyter's user
            for line in self.rfile:
                try:
                    request = json.loads(line)
                except ValueError:
                    return
                reply = broker.handle(request if isinstance(request, dict) else {})
                self.wfile.write(json.dumps(reply).encode() + b"\n")
                self.wfile.flush()

    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, 0, client_gid)
    os.chmod(directory, SOCKET_DIR_MODE)
    path.unlink(missing_ok=True)
    server = Server(str(path), Handler)
    os.chown(path, 0, client_gid)
    os.chmod(path, 0o660)
    return server


def reap(broker: Broker) -> None:
    """Collect kernels that exited while nobody polled them (no zombies), and stop an idle zygote."""
    while True:
        time.sleep(2)
        with broker.lock:
            kernels = list(broker.kernels.values())
        for kernel in kernels:
            kernel.process.poll()
        broker.retire_idle_zygote()


def watch_disk(broker: Broker) -> None:
    while True:
        time.sleep(broker.site.disk_cap.interval)
        try:
            broker.enforce_disk_cap()
        except OSError as exc:  # a folder that vanished meanwhile: next round
            print(f"sifu.kernel_broker: disk check: {exc}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sifu.kernel_broker", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--notebook-root", required=True, type=Path)
    parser.add_argument("--kernel-dir", required=True, type=Path)
    parser.add_argument("--sifu-url", required=True)
    parser.add_argument("--sifu-user", default="sifu")
    parser.add_argument("--jupyter-user", default="jupyter")
    parser.add_argument("--max-disk-mib", type=int, default=0, help="per student, folder and kernel home (0: no cap)")
    parser.add_argument("--max-files", type=int, default=0, help="per student, files, folders and links (0: no cap)")
    parser.add_argument("--disk-check-interval", type=float, default=30.0, help="seconds between checks of running students")
    parser.add_argument("--no-zygote", action="store_true", help="exec every kernel rather than fork it from the zygote")
    parser.add_argument("--zygote-idle-seconds", type=float, default=ZYGOTE_IDLE_SECONDS,
                        help="stop the zygote after this long with no kernel; the next kernel starts it again (0: never)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("sifu.kernel_broker: must run as root (it starts each kernel as its student's uid)", file=sys.stderr)
        return 2
    jupyter = pwd.getpwnam(args.jupyter_user)
    site = Site(args.notebook_root, args.kernel_dir, args.sifu_url.rstrip("/"), pwd.getpwnam(args.sifu_user).pw_uid,
                jupyter.pw_uid, jupyter.pw_gid, sys.executable,
                DiskCap(args.max_disk_mib * MIB, args.max_files, args.disk_check_interval), zygote=not args.no_zygote,
                zygote_idle=args.zygote_idle_seconds)
    site.kernel_dir.mkdir(parents=True, exist_ok=True)
    os.chown(site.kernel_dir, 0, 0)
    os.chmod(site.kernel_dir, 0o711)  # each student's directory below is reached by name only
    broker = Broker(site)
    server = serve(broker, args.socket, jupyter.pw_uid, jupyter.pw_gid)
    threading.Thread(target=reap, args=(broker,), daemon=True).start()
    if site.disk_cap.max_bytes or site.disk_cap.max_entries:
        threading.Thread(target=watch_disk, args=(broker,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"sifu.kernel_broker: kernels run as their students' uids; Jupyter ({args.jupyter_user}) asks on {args.socket}",
          file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
