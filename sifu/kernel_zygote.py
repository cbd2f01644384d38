"""`python -m sifu.kernel_zygote`: the kernel broker's fork server. It imports ipykernel once, then forks one child
per student's kernel; each child takes the walls the broker's exec path builds (sifu.kernel_broker.kernel_command
under sifu.kernel_limits) and only then starts the kernel app (issue 14: click to first result, cold).

Why a zygote. Profiled on this machine (idle, ipykernel 7.4): a kernel exec'd from scratch takes 0.17–0.21 s of CPU
to its kernel_info reply, and 0.15–0.18 s of it is importing ipykernel, IPython, jupyter_client, zmq, tornado and
debugpy; forked from a process that has them, the same kernel takes 0.02–0.05 s of CPU (in the app container, by
bench/kernel_boot.py: 0.235 s exec'd, 0.050 s forked; wall 0.30 s and 0.14 s on a quiet machine). On the shared 2 cores,
CPU is what a cold start waits for (at a load of 20, 0.2 s of CPU took seconds). Starting a kernel in advance when
Sifu serves the notebook was the other design; it was not taken: a kernel would sit running as a student who
may never click (memory and a uid's processes held per page view, which the per-student sizing counts), and
handing a running kernel to a session Jupyter creates later means a kernel manager that adopts a process it did
not start, a second path for every restart and cull. The zygote changes nothing Jupyter sees.

What keeps it sound:
- The zygote holds no student's data, ever: the broker sends it only "fork" and a fresh socket (SCM_RIGHTS); the
  child reads its request (uid, folder, connection file, environment) from that socket after the fork, so the
  zygote's memory, which every later kernel inherits, never held another student's request. It imports and
  checks that it runs no thread and has no zmq context (a fork would copy a half of either); the kernel app
  creates its context, threads and sockets in the child.
- Each child builds the same walls as the exec path, in the same order, before any student code: its own session
  (setsid), stdin from /dev/null, every other descriptor closed, the student's folder as cwd, umask 007, the
  kernel environment allow-list (the broker's kernel_env) as its whole environment, then
  sifu.kernel_limits.confine_kernel: an empty capability bounding set, no groups, the student's uid as uid and
  gid, no_new_privs, the hard rlimits and oom_score_adj. The broker still owns the kernel record, signals the
  session and kills the uid on release; the zygote, the parent, reaps each kernel and reports its exit status.
- The zygote runs as root with the broker's capabilities and no_new_privs (it is the broker's child), and is reached
  only through the socket pair the broker holds: nothing on the filesystem, nothing a kernel inherits.
- What kernels from one zygote share that exec'd kernels did not: the address-space layout (ASLR is per exec) and
  the str hash seed. Both matter only to an attacker who can feed data to another student's process, which the
  uid walls already prevent. `random` reseeds itself in every fork child (CPython's at-fork hook).
- A kernel's sys.path starts with its folder, as `python -m ipykernel_launcher` run there had it, and its
  sys.argv and __main__ are the launcher's (runpy, as -m does). Its /proc cmdline is the zygote's (with
  `ipykernel_launcher` in it, so usage counts it as a kernel), told apart by its uid.
The broker starts the zygote with the first kernel, not at its own start, and stops it once it has had no kernel
for a while (sifu.kernel_broker's --zygote-idle-seconds): an instance with no student holds no zygote (issue 14).
If the zygote cannot start or dies, the broker kills its kernels (Jupyter restarts them) and starts a new one;
if a new one cannot start, kernels are exec'd as before.
"""

from __future__ import annotations

import array
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import traceback
from typing import Any, Mapping

from sifu.kernel_streams import KERNEL_OPTIONS

LAUNCHER = "ipykernel_launcher"
COMMAND = ["-m", "sifu.kernel_zygote", LAUNCHER]
# Imported before any fork: what every kernel imports anyway (measured with python -X importtime).
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
           "ipykernel.comm", "IPython.core.completer", "jupyter_client.session", "sifu.kernel_limits", "sifu.confine",
           "sifu.kernel_streams", "ctypes")
MAX_REQUEST = 1 << 20


# --- the zygote (root, no thread, no student's data) -----------------------------------------------------------


def preload() -> dict[str, str]:
    """Import what every kernel imports; returns what the imports put in the environment (debugpy sets a variable),
    which each kernel's environment gets too, as an exec'd kernel's would."""
    import importlib

    before = dict(os.environ)
    for module in PRELOAD:
        importlib.import_module(module)
    import zmq

    # A fork copies a context's io threads' state but not the threads: none may exist before the first fork.
    if threading.active_count() != 1 or zmq.Context._instance is not None:
        raise RuntimeError("the zygote must hold no thread and no zmq context before it forks")
    return {name: value for name, value in os.environ.items() if before.get(name) != value}


def startup_locale(env: Mapping[str, str]) -> dict[str, str]:
    """What an interpreter started with `env` adds to it (PEP 538): LC_CTYPE=C.UTF-8 under the C locale."""
    if env.get("LC_ALL") or (env.get("LC_CTYPE") or env.get("LANG") or "C") not in ("C", "POSIX"):
        return {}
    return {"LC_CTYPE": "C.UTF-8"}


def receive_fork(control: socket.socket) -> int | None:
    """The next "fork" from the broker: the kernel's request socket, or None when the broker closed the pair."""
    fds = array.array("i")
    try:
        message, ancillary, _, _ = control.recvmsg(16, socket.CMSG_SPACE(fds.itemsize))
    except OSError:  # the broker is gone
        return None
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    if message != b"fork" or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return None
    return fds[0]


def serve(control: socket.socket, preloaded_env: Mapping[str, str]) -> None:
    """Fork on request, reap children and report their exit: `forked PID` / `failed REASON` / `exit PID CODE`."""
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is control:
                request_fd = receive_fork(control)
                if request_fd is None:
                    return
                try:
                    pid = os.fork()
                except OSError as exc:
                    os.close(request_fd)
                    control.send(f"failed {exc.strerror}".encode())
                    continue
                if pid == 0:
                    become_kernel(request_fd, control, (wake_read, wake_write), preloaded_env)
                os.close(request_fd)
                control.send(f"forked {pid}".encode())
            else:
                try:
                    os.read(wake_read, 4096)
                except BlockingIOError:
                    pass
        report_exits(control)


def report_exits(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        control.send(f"exit {pid} {os.waitstatus_to_exitcode(status)}".encode())


def become_kernel(request_fd: int, control: socket.socket, wake: tuple[int, int], preloaded_env: Mapping[str, str]) -> None:
    """In the fork child: read this kernel's request, build its walls, run the kernel app; never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.close()
        for fd in wake:
            os.close(fd)
        os.setsid()
        channel = socket.socket(fileno=request_fd)
        request = json.loads(read_request(channel))
        try:
            enter_walls(request, channel.fileno(), preloaded_env)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            channel.sendall(str(getattr(exc, "strerror", None) or exc).encode())
            os._exit(1)
        channel.sendall(b"ok")
        channel.close()
        run_kernel(request["connection_file"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def read_request(channel: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
        chunk = channel.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def enter_walls(request: Mapping[str, Any], keep_fd: int, preloaded_env: Mapping[str, str]) -> None:
    """The exec path's walls, in its order: Popen's (stdin, descriptors, cwd, umask, environment), then
    sifu.kernel_limits' (capabilities, uid, no_new_privs, rlimits, oom_score_adj)."""
    from sifu.kernel_limits import KERNEL_UMASK, confine_kernel

    uid, cwd = int(request["uid"]), str(request["cwd"])
    env = {str(k): str(v) for k, v in dict(request["env"]).items()}
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, os.sysconf("SC_OPEN_MAX"))
    os.chdir(cwd)
    os.umask(KERNEL_UMASK)
    os.environ.clear()
    os.environ.update({**env, **startup_locale(env), **preloaded_env})
    sys.path[0] = cwd  # where `python -m` puts the working directory
    confine_kernel(uid)


def launcher_argv(connection_file: str) -> list[str]:
    """The kernel app's module and options on both paths: after `python -m` on the broker's exec path
    (sifu.kernel_broker.kernel_command), as sys.argv in a fork child here."""
    return [LAUNCHER, "-f", connection_file, *KERNEL_OPTIONS]


def run_kernel(connection_file: str) -> None:
    import runpy

    sys.argv = launcher_argv(connection_file)
    runpy.run_module(LAUNCHER, run_name="__main__", alter_sys=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != [LAUNCHER] or os.geteuid() != 0 or "SIFU_ZYGOTE_FD" not in os.environ:
        print(f"usage: SIFU_ZYGOTE_FD=N python -m sifu.kernel_zygote {LAUNCHER} (as root; the kernel broker starts it)",
              file=sys.stderr)
        return 2
    control = socket.socket(fileno=int(os.environ.pop("SIFU_ZYGOTE_FD")))
    preloaded_env = preload()
    control.send(b"ready")
    serve(control, preloaded_env)
    return 0


# --- the broker's side ------------------------------------------------------------------------------------------


class ZygoteGone(Exception):
    """The zygote is not running (it could not start, or died): the broker execs the kernel instead."""


class ForkedKernel:
    """What the broker needs of a kernel the zygote forked: subprocess.Popen's pid, poll, wait and returncode."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self.exited = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self.exited.wait(timeout)
        return self.returncode

    def finish(self, code: int) -> None:
        self.returncode = code
        self.exited.set()


class Zygote:
    """The broker's handle on one zygote process: start kernels through it, learn when they exit."""

    def __init__(self, python: str, env: Mapping[str, str], timeout: float = 60.0):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        self.timeout = timeout
        self.kernels: dict[int, ForkedKernel] = {}
        self.lock = threading.Lock()  # one fork at a time: its reply is the next "forked"/"failed"
        self.replies: list[str] = []
        self.replied = threading.Condition()
        self.alive = True
        try:
            self.process = subprocess.Popen(
                [python, *COMMAND], cwd="/", env={**env, "SIFU_ZYGOTE_FD": str(theirs.fileno())},
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        ours.settimeout(timeout)
        try:
            ready = ours.recv(64)
        except OSError:
            ready = b""
        ours.settimeout(None)
        if ready != b"ready":
            self.process.kill()
            self.process.wait()
            raise ZygoteGone("the kernel zygote did not start")
        threading.Thread(target=self._listen, daemon=True).start()

    def _listen(self) -> None:
        while True:
            try:
                message = self.control.recv(256).decode()
            except OSError:
                message = ""
            if not message:
                break
            kind, _, rest = message.partition(" ")
            with self.replied:
                if kind == "exit":  # after its "forked": messages arrive in order
                    pid, code = (int(part) for part in rest.split())
                    kernel = self.kernels.pop(pid, None)
                    if kernel is not None:
                        kernel.finish(code)
                    continue
                if kind == "forked":  # registered here, before the next message can be its exit
                    kernel = ForkedKernel(int(rest))
                    self.kernels[kernel.pid] = kernel
                self.replies.append(kernel if kind == "forked" else message)
                self.replied.notify_all()
        self._lost()

    def _lost(self) -> None:
        """The zygote died: its kernels now belong to init, and the broker can no longer learn their exit. Kill
        each one's session (Jupyter's restarter starts it again) and report it gone."""
        with self.replied:
            self.alive = False
            kernels, self.kernels = self.kernels, {}
            self.replied.notify_all()
        for kernel in kernels.values():
            try:
                os.killpg(kernel.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            kernel.finish(-signal.SIGKILL)
        self.process.wait()

    def start(self, request: Mapping[str, Any]) -> ForkedKernel:
        """Fork a kernel for `request` (uid, cwd, connection_file, env); returns once it holds its walls.
        Raises ZygoteGone if the zygote is not running, OSError if the child could not build its walls."""
        ours, theirs = socket.socketpair()
        kernel = None
        try:
            with self.lock, self.replied:
                if not self.alive:
                    raise ZygoteGone("the kernel zygote is not running")
                try:
                    self.control.sendmsg([b"fork"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                      array.array("i", [theirs.fileno()]))])
                except OSError:
                    raise ZygoteGone("the kernel zygote is not running") from None
                theirs.close()
                if not self.replied.wait_for(lambda: self.replies or not self.alive, self.timeout) or not self.replies:
                    raise ZygoteGone("the kernel zygote did not answer")
                reply = self.replies.pop(0)
            if not isinstance(reply, ForkedKernel):
                raise OSError(0, reply.partition(" ")[2])
            kernel = reply
            ours.settimeout(self.timeout)
            ours.sendall(json.dumps(dict(request)).encode() + b"\n")
            answer = ours.recv(4096).decode(errors="replace")
        except socket.timeout:
            answer = ""
            if kernel is not None:  # stuck before its walls were up: it must not go on
                try:
                    os.kill(kernel.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        finally:
            theirs.close()
            ours.close()
        if answer != "ok":
            raise OSError(0, answer or "no answer in time")
        return kernel

    def forked_running(self) -> bool:
        """Whether a kernel it forked has not exited yet (stopping the zygote would kill it)."""
        with self.replied:
            return bool(self.kernels)

    def stop(self) -> None:
        """Close the pair (shutdown first: a close alone neither wakes the listener's recv nor tells the zygote)."""
        try:
            self.control.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.process.wait()
        self.control.close()


if __name__ == "__main__":
    sys.exit(main())
