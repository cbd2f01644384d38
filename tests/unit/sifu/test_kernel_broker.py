"""The kernel broker's decisions that need no root (sifu/kernel_broker.py): whose folder, who listens, what runs."""

from __future__ import annotations

import dataclasses
import threading
import os
from pathlib import Path

import pytest

from sifu import kernel_broker
from sifu.kernel_broker import Refused, Site
from sifu.kernel_zygote import ForkedKernel


def site(root: Path) -> Site:
    return Site(root, root / "kernels", "http://127.0.0.1:3334", 1000, 1001, 1001, "/opt/venv/bin/python")


def test_the_student_is_the_folder_the_working_directory_really_is_in(tmp_path):
    (tmp_path / "users" / "alice" / "c").mkdir(parents=True)
    (tmp_path / "users" / "bob").mkdir(parents=True)
    os.symlink(tmp_path / "users" / "alice" / "c", tmp_path / "users" / "bob" / "link")
    here = site(tmp_path)
    assert kernel_broker.student_of(here, str(tmp_path / "users" / "alice" / "c")) == ("alice", Path(os.path.realpath(tmp_path / "users" / "alice")))
    assert kernel_broker.student_of(here, str(tmp_path / "users" / "bob" / "link"))[0] == "alice"  # not bob's
    for outside in (tmp_path / "users", tmp_path, tmp_path / "courses"):
        with pytest.raises(Refused):
            kernel_broker.student_of(here, str(outside))


def test_only_listening_sockets_on_the_port_count(tmp_path):
    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 00000000:0D06 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1\n"
        "   1: 0100007F:0D06 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  4242        0 2\n"
        "   2: 0100007F:0D07 00000000:0000 0A 00000000:00000000 00:00000000 00000000  4242        0 3\n")
    assert kernel_broker.listeners_uids(3334, (str(table),)) == {1000}
    assert kernel_broker.listeners_uids(3335, (str(table),)) == {4242}
    assert kernel_broker.listeners_uids(9, (str(table),)) == set()


def test_the_command_is_fixed_and_the_environment_allow_listed(tmp_path):
    here = site(tmp_path)
    command = kernel_broker.kernel_command(here, "/run/sifu-kernels/200001/kernel-x.json", 200001)
    # Isolated (-I): the student's folder, the working directory, is not on the root launcher's path.
    assert command[:8] == ["/opt/venv/bin/python", "-I", "-m", "sifu.kernel_limits", "--no-new-privs", "--user", "200001", "--"]
    assert command[8:] == ["/opt/venv/bin/python", "-m", "ipykernel_launcher", "-f", "/run/sifu-kernels/200001/kernel-x.json",
                           "--ext=sifu.kernel_streams"]
    env = kernel_broker.kernel_env({"PATH": "/usr/bin", "SIFU_SECRET_KEY": "x", "LD_PRELOAD": "/evil.so",
                                    "JPY_SESSION_NAME": "n", "HOME": "/home/jupyter"}, Path("/run/sifu-kernels/200001/home"))
    assert env == {"PATH": "/usr/bin", "JPY_SESSION_NAME": "n", "HOME": "/run/sifu-kernels/200001/home",
                   "TMPDIR": "/run/sifu-kernels/200001/home/tmp"}


def test_a_connection_file_outside_the_students_directory_is_refused(tmp_path):
    here = site(tmp_path)
    for path in ("/etc/shadow", str(tmp_path / "kernels" / "200002" / "kernel-x.json"),
                 str(tmp_path / "kernels" / "200001" / "other.json")):
        with pytest.raises(Refused):
            kernel_broker.hand_over_connection_file(here, tmp_path / "kernels" / "200001", path, 200001)


def test_unknown_operations_and_kernels_it_did_not_start_are_refused(tmp_path):
    broker = kernel_broker.Broker(site(tmp_path))
    assert broker.handle({"op": "exec"}) == {"error": "unknown operation"}
    assert broker.handle({"op": "signal", "pid": 1, "signum": 9}) == {"error": "no such kernel"}  # not one it started


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another uid needs root")
def test_copies_sifu_adds_to_a_folder_the_student_already_owns_become_the_students(tmp_path):
    here, student = site(tmp_path), 200_001
    folder = tmp_path / "users" / "alice"
    (folder / "course-a").mkdir(parents=True)
    (folder / "course-a" / "first.ipynb").write_text("{}")
    for path in (folder, folder / "course-a", folder / "course-a" / "first.ipynb"):
        os.chown(path, 1000, 1000)  # as Sifu made them
    kernel_broker.claim_folder(here, folder, student)
    assert {p.stat().st_uid for p in [folder, *folder.rglob("*")]} == {student}
    # Later Sifu (uid 1000) copies another course's notebook in; the next kernel start hands it over too.
    (folder / "course-b").mkdir()
    (folder / "course-b" / "second.ipynb").write_text("{}")
    os.chown(folder / "course-b", 1000, 1000)
    os.chown(folder / "course-b" / "second.ipynb", 1000, 1000)
    kernel_broker.claim_folder(here, folder, student)
    assert {p.stat().st_uid for p in [folder, *folder.rglob("*")]} == {student}
    # Nothing of another kernel user's is taken, and a folder of another student's is refused.
    os.chown(folder, 200_002, 1000)
    with pytest.raises(Refused):
        kernel_broker.claim_folder(here, folder, student)


@pytest.mark.skipif(os.geteuid() != 0, reason="serve() gives the socket's directory to root")
def test_a_burst_of_connections_waits_for_the_accept_loop_instead_of_failing(tmp_path):
    """Students' kernels poll and start together: connects that come while the broker is busy must queue."""
    import socket

    path = tmp_path / "run" / "broker.sock"
    server = kernel_broker.serve(kernel_broker.Broker(site(tmp_path)), path, os.getuid(), os.getgid())
    clients = []
    try:
        for _ in range(50):  # nothing accepts meanwhile: all of them wait in the listen queue
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            clients.append(client)
            client.setblocking(False)
            client.connect(str(path))  # BlockingIOError once the queue is full
    finally:
        for client in clients:
            client.close()
        server.server_close()


def test_the_disk_cap_counts_bytes_and_entries_without_following_links(tmp_path):
    folder = tmp_path / "users" / "alice"
    (folder / "c").mkdir(parents=True)
    (folder / "c" / "big").write_bytes(b"x" * 3 * 2**20)
    for n in range(20):
        (folder / "c" / f"f{n}").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "huge").write_bytes(b"x" * 8 * 2**20)
    os.symlink(outside, folder / "link")  # counted as one entry, never followed
    usage = kernel_broker.usage_of(folder, tmp_path / "missing")
    assert usage.entries == 1 + 1 + 20 + 1  # c, big, f0..f19, link
    assert 3 * 2**20 <= usage.bytes < 5 * 2**20
    assert kernel_broker.DiskCap(4 * 2**20, 100).over(usage) is None
    assert kernel_broker.DiskCap(0, 0).over(usage) is None  # no cap
    too_big = kernel_broker.DiskCap(2 * 2**20, 0).over(usage)
    assert too_big and "at most 2 MiB." in too_big and "delete some of your files" in too_big
    too_many = kernel_broker.DiskCap(0, 10).over(usage)
    assert too_many and "in 23 files and folders" in too_many and "at most 10 files and folders." in too_many


def test_a_students_last_kernel_takes_their_home_and_shared_memory_files_with_it(tmp_path):
    uid, gid = os.getuid(), os.getgid()
    here = Site(tmp_path, tmp_path / "kernels", "http://127.0.0.1:3334", 1000, 1001, gid, "/opt/venv/bin/python",
                shm_dir=tmp_path / "shm")
    here.kernel_dir.mkdir()
    home = kernel_broker.kernel_dir_of(here, uid) / "home"
    (home / ".ipython" / "profile_default").mkdir(parents=True)
    (home / "tmp" / "big").write_bytes(b"x" * 1000)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("not the student's to lose")
    os.symlink(outside, home / "link")
    (tmp_path / "shm").mkdir()
    (tmp_path / "shm" / "sem.mine").write_text("")
    kernel_broker.clear_scratch(here, uid)
    assert sorted(os.listdir(home)) == ["tmp"] and os.listdir(home / "tmp") == []
    assert os.listdir(tmp_path / "shm") == []
    assert (outside / "keep").exists()  # the link went, not what it pointed at


def test_the_zygote_stops_only_after_the_idle_time_with_no_kernel_running_or_starting():
    retires = kernel_broker.zygote_retires
    assert retires(True, False, 100.0, 700.0, 600)
    assert not retires(True, False, 100.0, 699.0, 600)  # not idle long enough
    assert not retires(True, True, 100.0, 10_000.0, 600)  # a kernel runs or starts
    assert not retires(False, False, 100.0, 10_000.0, 600)  # none is running
    assert not retires(True, False, 100.0, 10_000.0, 0)  # 0: kept


class StandInZygote:
    """What the broker asks of a Zygote (no process: the real one needs root, tests/unit/sifu/test_kernel_zygote.py)."""
    alive = True
    stopped = False

    def forked_running(self) -> bool:
        return False

    def stop(self) -> None:
        self.stopped = True


def test_a_zygote_is_stopped_only_once_no_kernel_has_run_or_started_for_the_idle_time(tmp_path):
    broker = kernel_broker.Broker(dataclasses.replace(site(tmp_path), zygote_idle=600))
    zygote = broker.zygote = StandInZygote()
    with broker.zygote_in_use() as in_use:  # a kernel start using it, however long ago the last kernel was
        assert in_use is zygote
        broker.busy_at -= 3600
        broker.retire_idle_zygote()
        assert broker.zygote is zygote and not zygote.stopped
    kernel = ForkedKernel(4242)
    broker.kernels[kernel.pid] = kernel_broker.Kernel(kernel, 200_001)
    broker.busy_at -= 3600
    broker.retire_idle_zygote()  # a kernel running
    assert broker.zygote is zygote and not zygote.stopped
    kernel.finish(0)
    broker.retire_idle_zygote()  # it was running a moment ago: the idle time counts from then
    assert broker.zygote is zygote and not zygote.stopped
    broker.busy_at -= 600
    broker.retire_idle_zygote()
    assert broker.zygote is None and zygote.stopped


def test_a_release_does_not_take_a_kernel_the_same_student_is_starting(tmp_path, monkeypatch):
    """A student's last kernel is released (a culled notebook) while their other notebook starts one: the release
    must count that kernel, or it kills every process of the uid, the new kernel with them, and clears its home."""
    broker = kernel_broker.Broker(site(tmp_path))
    uid = 200_001
    never_a_pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # os.killpg on it: ProcessLookupError
    cleared: list[int] = []
    monkeypatch.setattr(kernel_broker, "kill_uid", cleared.append)
    monkeypatch.setattr(kernel_broker, "clear_scratch", lambda site, uid: cleared.append(uid))
    monkeypatch.setattr(kernel_broker, "hand_over_connection_file", lambda *args: "kernel.json")
    monkeypatch.setattr(broker, "prepare", lambda request: {"uid": uid, "kernel_dir": str(tmp_path), "folder": str(tmp_path)})
    forking, go = threading.Event(), threading.Event()

    def fork(*args):
        forking.set()
        go.wait(10)
        return ForkedKernel(never_a_pid + 1)

    monkeypatch.setattr(broker, "_fork", fork)
    ending = ForkedKernel(never_a_pid)
    ending.finish(0)
    broker.kernels[ending.pid] = kernel_broker.Kernel(ending, uid)
    starting = threading.Thread(target=broker.start, args=({"cwd": str(tmp_path), "env": {}},))
    starting.start()
    assert forking.wait(10)
    releasing = threading.Thread(target=broker.release, args=({"pid": ending.pid},))
    releasing.start()
    releasing.join(1)  # it waits for the start to register its kernel (without the student's lock it ends now)
    go.set()
    starting.join(10)
    releasing.join(10)
    assert never_a_pid + 1 in broker.kernels and ending.pid not in broker.kernels
    assert cleared == []  # not the student's last kernel: nothing of theirs killed or cleared
