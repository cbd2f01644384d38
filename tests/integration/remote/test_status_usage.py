"""`inv status`'s per-instance and per-student figures, over SSH to the test bed's hosts.

What is real: sshd, the Fabric fan-out, the shell line that finds the one app container, sifu.usage itself (this
checkout's) reading each host's own /proc (its PID namespace) and the folders on the shared volume (ganesha's
export, which converge mounted), the students' processes (real processes under the students' uids). What
stands in: the docker CLI (tests/support/hosts.py), which runs that sifu.usage for `docker exec -u 0 ID python
-m sifu.usage /notebooks` on the container's view of /notebooks; and the EC2 instance list, built here.
"""

from __future__ import annotations

import shutil

import pytest

from deployer import environment, render
from deployer.aws.ec2 import Instance
from deployer.remote import executor

pytestmark = pytest.mark.integration

ALICE, BOB, CAROL = 2001, 2002, 2003


def _instance(id_: str, address: str, state: str = "running") -> Instance:
    return Instance(id=id_, state=state, public_ip=address, private_ip=None, availability_zone="us-east-1a",
                    subnet_id=None, security_group_ids=())


def _start(host, uid: int, *argv: str) -> str:
    """A process of uid on the host, left running (its pid returned); `ipykernel_launcher` in argv makes it a kernel
    to sifu.usage, which looks at the command line as for a real kernel."""
    line = " ".join(argv)
    return host.run(f"setpriv --reuid={uid} --regid={uid} --clear-groups {line} </dev/null >/dev/null 2>&1 & echo $!"
                    ).stdout.strip()


def test_status_shows_students_kernels_memory_and_disk_per_instance_and_an_unreachable_one_as_a_line(remote_bed):
    bed = remote_bed
    h2, h3, h4 = bed.hosts[1], bed.hosts[2], bed.hosts[3]
    s, _ = bed.settings()
    bed.deploy_bundle(h2, h3)
    converged = executor.converge([h2.address, h3.address], s, render.Facts(offline=False))
    assert not converged.failed, [(h.host, h.error) for h in converged.failed]
    users = bed.export / "users"
    folders = {"alice": (ALICE, 300_000), "bob": (BOB, 50_000), "carol": (CAROL, 700_000)}
    for name, (uid, size) in folders.items():
        (users / name).mkdir(parents=True)
        (users / name / "work.ipynb").write_bytes(b"x" * size)
        for path in (users / name, users / name / "work.ipynb"):
            shutil.chown(path, uid, uid)
    kernel = ("python3", "-c", "'import time; time.sleep(300)'", "ipykernel_launcher", "-f", "kernel.json")
    started = [(h2, _start(h2, ALICE, *kernel)), (h3, _start(h3, BOB, *kernel)), (h3, _start(h3, BOB, "sleep", "300"))]
    h4.stop_ssh()
    try:
        found = environment.student_usage(s, [_instance("i-h2", h2.address), _instance("i-h3", h3.address),
                                              _instance("i-h4", h4.address), _instance("i-gone", "", "stopped")])
    finally:
        h4.start_ssh()
        for host, pid in started:
            host.run(f"kill {pid}", check=False)
        shutil.rmtree(users)

    instances = {row["instance"]: row for row in found["instances"]}
    assert list(instances) == ["i-h2", "i-h3", "i-h4", "i-gone"], found
    assert (instances["i-h2"]["students"], instances["i-h2"]["kernels"]) == (1, 1), instances
    assert (instances["i-h3"]["students"], instances["i-h3"]["kernels"]) == (1, 1)
    for row in (instances["i-h2"], instances["i-h3"]):
        assert row["error"] is None and 1024 < row["memory_kib"] < 200 * 1024  # a small Python's PSS
    assert instances["i-h4"]["students"] is None and instances["i-h4"]["error"].startswith("unreachable")
    assert instances["i-gone"]["error"] == "stopped, not running"

    students = {(row["student"], row["instance"]): row for row in found["students"]}
    assert set(students) == {("alice", "i-h2"), ("bob", "i-h3"), ("carol", None)}
    alice, bob, carol = students[("alice", "i-h2")], students[("bob", "i-h3")], students[("carol", None)]
    assert (alice["kernels"], alice["processes"]) == (1, 1)
    assert (bob["kernels"], bob["processes"]) == (1, 2)  # the kernel and the sleep
    assert alice["pss_kib"] is not None and 0 < alice["pss_kib"] <= alice["rss_kib"]  # root read smaps_rollup
    assert (carol["kernels"], carol["memory_kib"]) == (0, 0)
    for row, (_, size) in zip((alice, bob, carol), folders.values()):  # disk: allocated blocks, on the volume
        assert size // 1024 <= row["disk_kib"] < size // 1024 + 64
