"""The container's outer walls, through the real image started as Elastic Beanstalk starts it (Docker's default
capabilities, no security options; converge's `docker update` for the limits): the process tree keeps only the
kernel broker's capabilities and no_new_privs (sifu/confine.py), kernels hold none, the broker gets no secret,
and the cgroup limits converge sets hold a fork bomb in.

cgroup v1 (this machine) and v2 (Amazon Linux 2023) name the limit files differently; both are read.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from deployer.remote import commands as cmd
from deployer.templating.context import CONTAINER_CAPABILITIES, container_memory_mb
from sifu import confine, kernel_limits, launch
from tests.integration.image.test_container import (  # noqa: F401 (container, notebooks: the same fixtures)
    ATTEMPT, container, exec_out, notebooks, running_programs, signed_in, start_kernel)
from tests.support.app_image import run_app
from tests.support.jupyter_client import execute

pytestmark = pytest.mark.integration

MINIMAL = confine.mask_of(CONTAINER_CAPABILITIES)
SETUID_ID = "/usr/local/bin/sifu-test-setuid-id"  # a copy of id(1), setuid root: prints the euid it runs with


# Run as root in the container: every process's status fields and command line, as JSON.
READ_PROCESSES = r"""
import json, os
found = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
        command = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except OSError:
        continue
    found[pid] = {"command": command, **{key: value.split() for key, value in status.items()}}
print(json.dumps(found))
"""


def process_tree(container) -> dict[int, dict]:
    """Every process descending from the container's PID 1 (not those of `docker exec`): uid, capability sets,
    NoNewPrivs, command."""
    processes = {}
    for pid, fields in json.loads(exec_out(container, "python", "-c", READ_PROCESSES)).items():
        processes[int(pid)] = {"ppid": int(fields["PPid"][0]), "uid": int(fields["Uid"][0]), "command": fields["command"],
                               "nnp": int(fields["NoNewPrivs"][0]),
                               **{key: int(fields[key][0], 16) for key in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb")}}
    tree, frontier = {}, {1}
    while frontier:
        tree.update({pid: processes[pid] for pid in frontier})
        frontier = {pid for pid, p in processes.items() if p["ppid"] in frontier and pid not in tree}
    return tree


@pytest.mark.parametrize("as_local_run", [False, True], ids=["as-on-eb", "as-local-run"])
def test_the_tree_keeps_only_the_brokers_capabilities_and_no_new_privs(app_image, docker_client, notebooks, as_local_run):
    """Under Docker's defaults (as on EB) and with cap_drop ALL + the minimal set (local runs, the e2e stack):
    dumb-init, supervisord and the broker hold exactly the minimal set; Sifu and Jupyter, which drop root, hold
    nothing, not even in their bounding set; every process has no_new_privs."""
    container = run_app(docker_client, app_image, notebooks, as_local_run=as_local_run)
    try:
        check_the_tree(app_image, container)
    finally:
        container.remove(force=True)


def check_the_tree(app_image, container):
    programs = running_programs(app_image, container)
    tree = process_tree(container)
    broker, sifu, jupyter = (programs[name][1] for name in ("kernel-broker", "sifu", "jupyter"))
    assert {broker, sifu, jupyter} <= set(tree)
    for pid, process in tree.items():
        assert process["nnp"] == 1, process
        assert process["CapInh"] == process["CapAmb"] == 0, process
        if process["uid"] == 0:
            assert process["CapBnd"] == process["CapEff"] == process["CapPrm"] == MINIMAL, \
                (confine.names_of(process["CapBnd"]), process)
        else:
            assert process["CapBnd"] == process["CapEff"] == process["CapPrm"] == 0, process
    assert {pid for pid, p in tree.items() if p["uid"] == 0} >= {1, broker}
    assert tree[broker]["CapBnd"] == MINIMAL and confine.names_of(MINIMAL) == sorted(CONTAINER_CAPABILITIES)
    # Nothing else runs as root: the root processes are dumb-init (PID 1), supervisord, the broker and, once a
    # kernel has started, its kernel zygote (sifu/kernel_zygote.py), the broker's child.
    zygotes = {pid for pid, p in tree.items() if "sifu.kernel_zygote" in p["command"]}
    assert all(tree[pid]["ppid"] == broker and tree[pid]["uid"] == 0 for pid in zygotes), tree
    assert len([pid for pid, p in tree.items() if p["uid"] == 0 and pid not in zygotes]) == 3, tree


def test_the_broker_gets_no_secret(app_image, container):
    programs = running_programs(app_image, container)
    environ = exec_out(container, "cat", f"/proc/{programs['kernel-broker'][1]}/environ").split("\0")
    names = {item.split("=", 1)[0] for item in environ if item}
    assert names and names <= set(launch.COMMON), names
    # supervisord itself still holds them (EB hands the container its secrets): the broker's came from the allow-list.
    supervisord = tree_parent(container, programs["kernel-broker"][1])
    assert "SIFU_SECRET_KEY" in exec_out(container, "cat", f"/proc/{supervisord}/environ")


def tree_parent(container, pid: int) -> int:
    return int(exec_out(container, "awk", "/^PPid:/{print $2}", f"/proc/{pid}/status"))


CAPABILITY_CELL = ATTEMPT + r'''
import subprocess
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
found.update({key: status[key].strip() for key in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb", "NoNewPrivs")})
found["setuid_binary_euid"] = subprocess.run([SETUID_ID, "-u"], capture_output=True, text=True).stdout.strip()
attempt("broker_environ", lambda: open(f"/proc/{BROKER}/environ").read())
found["uid"] = os.getuid()
json.dumps(found)
'''


def test_a_cell_holds_no_capability_and_a_setuid_binary_gives_it_none(app_image, container):
    programs = running_programs(app_image, container)
    exec_out(container, "bash", "-c", f"cp /usr/bin/id {SETUID_ID} && chown 0:0 {SETUID_ID} && chmod 4755 {SETUID_ID}")
    # It works: without no_new_privs, nobody running it is euid 0.
    assert exec_out(container, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SETUID_ID, "-u").strip() == "0"
    jupyter_url = f"http://127.0.0.1:{app_image.jupyter_port}"
    alice = signed_in(container, jupyter_url, "alice")
    try:
        kernel = start_kernel(alice, "alice")
        code = f"SETUID_ID = {SETUID_ID!r}; BROKER = {programs['kernel-broker'][1]}\n" + CAPABILITY_CELL
        found = json.loads(execute(jupyter_url, kernel, alice.cookie_header(), code).strip("'"))
        uid = found.pop("uid")
        assert uid > 200_000
        assert found == {"CapBnd": "0000000000000000", "CapEff": "0000000000000000", "CapPrm": "0000000000000000",
                         "CapInh": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1",
                         "setuid_binary_euid": str(uid), "broker_environ": "EACCES"}, found
    finally:
        alice.close()


# Run in bob's kernel, forked from the zygote after alice's: its walls, and how often alice's kernel id (which was in
# her request: her connection file's name) occurs in its memory, against a fresh id looked for the same way.
FORKED_CELL = r'''
import json, os, resource
def occurrences(reversed_text):
    needle = reversed_text[::-1].encode()  # the cell's source holds it reversed, so only a copy of the real one counts
    found = 0
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or fields[-1] in ("[vvar]", "[vsyscall]"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                found += mem.read(end - start).count(needle)
            except (OSError, ValueError, OverflowError):
                pass
    return found
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
mask = os.umask(0)
os.umask(mask)
json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "session_leader": os.getsid(0) == os.getpid(),
            "parent": open(f"/proc/{os.getppid()}/cmdline").read().split("\0"), "CapBnd": status["CapBnd"].strip(),
            "CapEff": status["CapEff"].strip(), "NoNewPrivs": status["NoNewPrivs"].strip(), "umask": mask,
            "oom_score_adj": int(open("/proc/self/oom_score_adj").read()),
            "limits": {name: resource.getrlimit(getattr(resource, name)) for name in LIMITS},
            "secrets": sorted(name for name in os.environ if name.startswith(("SIFU_", "EDX_", "RDS_"))),
            "alice": occurrences(ALICE_REVERSED), "fresh": occurrences(FRESH_REVERSED)})
'''


def test_a_kernel_from_the_zygote_has_its_students_walls_and_nothing_of_another_student(app_image, container):
    """The broker forks kernels from one root process that imported ipykernel (sifu/kernel_zygote.py). Bob's kernel,
    forked after alice's, is a child of that zygote yet holds what the exec path gave: his uid and gid and no group,
    its own session, no capability, no_new_privs, umask 007, the hard rlimits and oom_score_adj 1000, no secret; and
    his memory holds alice's kernel id no more often than an id nobody used (the zygote never saw her request)."""
    running_programs(app_image, container)
    jupyter_url = f"http://127.0.0.1:{app_image.jupyter_port}"
    alice, bob = signed_in(container, jupyter_url, "alice"), signed_in(container, jupyter_url, "bob")
    try:
        alice_kernel = start_kernel(alice, "alice")
        assert execute(jupyter_url, alice_kernel, alice.cookie_header(), "6*7") == "42"
        bob_kernel = start_kernel(bob, "bob")
        code = (f"ALICE_REVERSED = {alice_kernel[::-1]!r}; FRESH_REVERSED = {uuid.uuid4().hex[::-1]!r}; "
                f"LIMITS = {sorted(kernel_limits.LIMITS)!r}\n" + FORKED_CELL)
        found = json.loads(execute(jupyter_url, bob_kernel, bob.cookie_header(), code, timeout=120).strip("'"))
        uid = found["uid"]
        assert uid > 200_000 and found["gid"] == uid and found["groups"] == [] and found["session_leader"], found
        assert "sifu.kernel_zygote" in found["parent"], found  # this path, not the exec fallback
        assert (found["CapBnd"], found["CapEff"], found["NoNewPrivs"]) == ("0000000000000000", "0000000000000000", "1"), found
        assert found["umask"] == kernel_limits.KERNEL_UMASK and found["oom_score_adj"] == kernel_limits.OOM_SCORE_ADJ, found
        for name, (soft, hard) in found["limits"].items():
            assert soft == hard <= kernel_limits.LIMITS[name], (name, soft, hard)
        assert found["secrets"] == [], found
        assert found["fresh"] >= 1 and found["alice"] == found["fresh"], found
    finally:
        alice.close()
        bob.close()


def cgroup_limit(container, v2: str, v1: str) -> str:
    """A limit of the container's own cgroup, as the container sees it."""
    return exec_out(container, "bash", "-c", f"cat /sys/fs/cgroup/{v2} 2>/dev/null || cat /sys/fs/cgroup/{v1}").strip()


def memory_mib() -> int:
    line = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    return int(line.split()[1]) // 1024


BOMB_CELL = r'''
import errno, json, os, signal, time
children, error = [], None
while len(children) < 10000:
    try:
        pid = os.fork()
    except OSError as exc:
        error = errno.errorcode[exc.errno]
        break
    if pid == 0:
        signal.pause()
        os._exit(0)
    children.append(pid)
with open(REPORT, "w") as out:
    out.write(json.dumps({"forked": len(children), "error": error}))
deadline = time.monotonic() + 60
while not os.path.exists(RELEASE) and time.monotonic() < deadline:
    time.sleep(0.1)
for pid in children:
    os.kill(pid, signal.SIGKILL)
for pid in children:
    os.waitpid(pid, 0)
len(children)
'''


def test_a_fork_bomb_meets_its_limits_and_another_student_still_answers(app_image, docker_engine, container, notebooks):
    """Converge's docker update (the builder's own arguments, through Debian's docker CLI) sets the container's
    memory and pids limits; the cgroup shows them. A fork bomb in alice's cell stops at her uid's RLIMIT_NPROC
    (2048) with room left under the container's pids.max, and bob's kernel answers 6*7 while her processes live."""
    running_programs(app_image, container)
    settings = app_image.settings
    memory = container_memory_mb(settings, memory_mib()) * 1048576
    pids = settings.remote.container_pids_limit
    update = cmd.limit_container(container.id, str(memory), pids)
    assert update[0] == "docker"
    docker_engine.cli(*update[1:])
    assert cgroup_limit(container, "pids.max", "pids/pids.max") == str(pids)
    assert cgroup_limit(container, "memory.max", "memory/memory.limit_in_bytes") == str(memory)
    inspected = docker_engine.cli("inspect", "-f", cmd.INSPECT_LIMITS, container.id).stdout.strip()
    assert inspected == f"{memory} {memory} {pids}"  # what converge compares: a re-run changes nothing

    jupyter_url = f"http://127.0.0.1:{app_image.jupyter_port}"
    alice, bob = signed_in(container, jupyter_url, "alice"), signed_in(container, jupyter_url, "bob")
    report, release = notebooks / "users" / "alice" / "c" / "bomb.json", notebooks / "users" / "alice" / "c" / "release"
    try:
        alice_kernel, bob_kernel = start_kernel(alice, "alice"), start_kernel(bob, "bob")
        outcome: list[str] = []
        code = "REPORT = '/notebooks/users/alice/c/bomb.json'; RELEASE = '/notebooks/users/alice/c/release'\n" + BOMB_CELL
        bomb = threading.Thread(target=lambda: outcome.append(execute(jupyter_url, alice_kernel, alice.cookie_header(),
                                                                      code, timeout=120)))
        bomb.start()
        try:
            deadline = time.monotonic() + 90
            while not report.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            found = json.loads(report.read_text())
            assert found["error"] == "EAGAIN" and 1900 < found["forked"] < 2048, found
            # Her processes are all alive now: bob's kernel still answers.
            assert execute(jupyter_url, bob_kernel, bob.cookie_header(), "6*7") == "42"
        finally:
            release.write_text("")
            os.chmod(release, 0o644)
            bomb.join(90)
        assert outcome == [str(found["forked"])], outcome
        assert execute(jupyter_url, alice_kernel, alice.cookie_header(), "6*7") == "42"
    finally:
        alice.close()
        bob.close()
