"""sifu.usage: per-student kernels, memory and disk, from /proc and the notebook root."""

from __future__ import annotations

import json
import os

from sifu import usage


def _process(proc, pid: int, uid: int, cmdline: list[str], rss: int, pss: int | None) -> None:
    entry = proc / str(pid)
    entry.mkdir()
    (entry / "status").write_text(f"Name:\tpython\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nVmRSS:\t  {rss} kB\n")
    (entry / "cmdline").write_text("\0".join(cmdline) + "\0")
    if pss is not None:
        (entry / "smaps_rollup").write_text(f"00400000-7ff r--p 00000000 00:00 0  [rollup]\nRss:  {rss} kB\nPss:  {pss} kB\n")


def test_figures_per_student_come_from_their_uids_processes_and_their_folder(tmp_path):
    proc, root = tmp_path / "proc", tmp_path / "notebooks"
    proc.mkdir()
    (proc / "self").mkdir()  # not a pid: skipped
    me = os.getuid()
    _process(proc, 10, me, ["python", "-m", "ipykernel_launcher", "-f", "k.json"], rss=1000, pss=800)
    _process(proc, 11, me, ["python", "-c", "pass"], rss=200, pss=100)
    _process(proc, 12, me + 1, ["python", "-m", "ipykernel_launcher"], rss=5000, pss=None)
    folder = root / "users" / "alice"
    folder.mkdir(parents=True)
    (folder / "data.bin").write_bytes(b"x" * 100_000)

    found = usage.usage(root, proc)["students"]
    assert set(found) == {"alice"}
    alice = found["alice"]
    assert (alice["uid"], alice["kernels"], alice["processes"], alice["rss_kib"], alice["pss_kib"]) == (me, 1, 2, 1200, 900)
    assert alice["disk_kib"] >= 100_000 // 1024


def test_main_reads_the_real_proc_and_prints_json(tmp_path, capsys, monkeypatch):
    root = tmp_path / "notebooks"
    (root / "users" / "bob").mkdir(parents=True)
    assert usage.main([str(root)]) == 0
    bob = json.loads(capsys.readouterr().out)["students"]["bob"]
    assert bob["uid"] == os.getuid() and bob["processes"] >= 1  # this test's own process at least
    monkeypatch.delenv("SIFU_NOTEBOOK_ROOT", raising=False)
    assert usage.main([]) == 2  # no root named: usage, not a guess



def test_root_reads_the_pss_it_could_not_read_as_each_owner():
    """The path a container's root takes (no CAP_SYS_PTRACE there: another uid's smaps_rollup answers EACCES, which
    tests/integration/image/test_container.py shows with the real image): a child that is exactly the owner reads
    it. Here on a real process of another uid and gid."""
    import shutil
    import subprocess
    import time
    from pathlib import Path

    import pytest

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv (util-linux) to start a process as another uid")
    sleeper = subprocess.Popen(["setpriv", "--reuid=2061", "--regid=2062", "--clear-groups", "sleep", "60"])
    try:
        status = Path(f"/proc/{sleeper.pid}/status")
        deadline = time.monotonic() + 10
        while "\nUid:\t2061" not in status.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # until setpriv has switched to the uid and exec'd sleep
        fields = usage._fields(status.read_text())
        unread = [{"pid": str(sleeper.pid), "ids": (fields["Uid"], fields["Gid"]), "pss_kib": None}]
        usage._pss_as_owners(unread)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert unread[0]["pss_kib"] is not None and unread[0]["pss_kib"] > 0
