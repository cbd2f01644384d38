"""`inv status`'s figures per instance and student: the command it sends and how it reads the answers (no SSH)."""

from __future__ import annotations

import json

from deployer.remote import commands, usage


def _report(**students) -> str:
    """sifu.usage's JSON for students given as name=(uid, kernels, processes, rss, pss, disk)."""
    keys = ("uid", "kernels", "processes", "rss_kib", "pss_kib", "disk_kib")
    return json.dumps({"notebook_root": "/notebooks",
                       "students": {name: dict(zip(keys, figures)) for name, figures in students.items()}})


def test_the_usage_line_runs_sifu_usage_as_root_in_the_one_app_container():
    assert commands.student_usage("label=sifu.role=app", "/notebooks", sudo=False) == (
        "c=$(docker ps -q --filter label=sifu.role=app); n=$(printf %s \"$c\" | grep -c . || true); "
        "if [ \"$n\" != 1 ]; then printf 'expected exactly one running app container matching %s, found %s: %s\\n' "
        "label=sifu.role=app \"$n\" \"$(echo $c)\" >&2; exit 3; fi; "
        "docker exec -u 0 \"$c\" python -m sifu.usage /notebooks")
    hostile = commands.student_usage("label=x;reboot", "/note books", sudo=True)
    assert "--filter 'label=x;reboot'" in hostile
    assert hostile.endswith("sudo -n -- docker exec -u 0 \"$c\" python -m sifu.usage '/note books'")


def test_students_on_an_instance_are_those_with_processes_there_and_memory_prefers_pss():
    i1 = usage.parse("i-1", "10.0.0.1", 0, _report(alice=(2001, 2, 3, 90_000, 60_000, 512),
                                                    bob=(2002, 0, 0, 0, 0, 2048),
                                                    carol=(2003, 1, 1, 40_000, None, 8)), "")
    assert not i1.error
    assert [f.name for f in i1.active] == ["alice", "carol"]
    assert (i1.kernels, i1.memory_kib) == (3, 60_000 + 40_000)  # carol's PSS unreadable: her RSS counts
    i2 = usage.parse("i-2", "10.0.0.2", 0, _report(alice=(2001, 0, 0, 0, 0, 512), bob=(2002, 1, 1, 30_000, 25_000, 2048),
                                                   carol=(2003, 0, 0, 0, 0, 8)), "")
    assert usage.instance_rows([i1, i2]) == [
        {"instance": "i-1", "host": "10.0.0.1", "error": None, "students": 2, "kernels": 3, "memory_kib": 100_000},
        {"instance": "i-2", "host": "10.0.0.2", "error": None, "students": 1, "kernels": 1, "memory_kib": 25_000}]
    rows = {(r["student"], r["instance"]): r for r in usage.student_rows([i1, i2])}
    assert set(rows) == {("alice", "i-1"), ("bob", "i-2"), ("carol", "i-1")}
    assert rows[("alice", "i-1")] == {"student": "alice", "instance": "i-1", "kernels": 2, "processes": 3,
                                      "rss_kib": 90_000, "pss_kib": 60_000, "memory_kib": 60_000, "disk_kib": 512}
    assert rows[("bob", "i-2")]["disk_kib"] == 2048


def test_a_student_with_no_process_anywhere_still_has_a_row_with_their_disk():
    idle = usage.parse("i-1", "h", 0, _report(dora=(2004, 0, 0, 0, 0, 4096)), "")
    assert usage.student_rows([idle]) == [{"student": "dora", "instance": None, "kernels": 0, "processes": 0,
                                           "rss_kib": 0, "pss_kib": 0, "memory_kib": 0, "disk_kib": 4096}]


def test_process_mode_counts_one_uids_processes_once_per_instance():
    # Every folder is Jupyter's own uid in process mode: sifu.usage repeats that uid's figures under every name.
    shared = usage.parse("i-1", "h", 0, _report(alice=(1000, 2, 5, 300_000, 200_000, 1),
                                                bob=(1000, 2, 5, 300_000, 200_000, 1)), "")
    assert (len(shared.active), shared.kernels, shared.memory_kib) == (2, 2, 200_000)


def test_unreachable_no_container_and_garbage_are_errors_never_exceptions():
    down = usage.parse("i-1", "10.0.0.1", -1, "", "unreachable: [Errno 111] Connection refused")
    none = usage.parse("i-2", "10.0.0.2", 3, "", "expected exactly one running app container matching label=sifu.role=app, found 0: \n")
    garbage = usage.parse("i-3", "10.0.0.3", 0, "Traceback (most recent call last):\n  ...\nOSError: boom\n", "")
    ok = usage.parse("i-4", "10.0.0.4", 0, _report(alice=(2001, 1, 1, 10, 10, 1)), "")
    assert down.error == "unreachable: [Errno 111] Connection refused"
    assert none.error == "exit 3: expected exactly one running app container matching label=sifu.role=app, found 0:"
    assert garbage.error.startswith("sifu.usage gave no report (JSONDecodeError") and "OSError: boom" in garbage.error
    rows = usage.instance_rows([down, none, garbage, ok])
    assert [(r["instance"], r["students"], bool(r["error"])) for r in rows] == [
        ("i-1", None, True), ("i-2", None, True), ("i-3", None, True), ("i-4", 1, False)]
    assert [r["student"] for r in usage.student_rows([down, none, garbage, ok])] == ["alice"]


def test_mib():
    assert (usage.mib(None), usage.mib(0), usage.mib(1536)) == ("-", "0.0 MiB", "1.5 MiB")
