"""The app container: both services come up, supervisord restarts a killed program, notebooks persist."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.support.app_image import http_status, prepare_notebook_root, run_app, service_urls, wait_ready
from tests.support.jupyter_client import JupyterSession, execute

pytestmark = pytest.mark.integration


@pytest.fixture
def notebooks(tmp_path):
    return prepare_notebook_root(tmp_path / "efs")


@pytest.fixture
def container(app_image, docker_client, notebooks):
    running = run_app(docker_client, app_image, notebooks)
    yield running
    running.remove(force=True)


def exec_out(container, *cmd: str, user: str = "") -> str:
    code, out = container.exec_run(list(cmd), user=user)
    assert code == 0, out.decode(errors="replace")
    return out.decode()


def program_pids(container) -> dict[str, tuple[str, int | None]]:
    """supervisorctl status -> {program: (state, pid)}."""
    _, out = container.exec_run(["supervisorctl", "--configuration", "/etc/sifu/supervisord.conf", "status"])
    programs = {}
    for line in out.decode().splitlines():
        match = re.match(r"(\S+)\s+(\S+)(?:\s+pid (\d+))?", line)
        if match:
            programs[match.group(1)] = (match.group(2), int(match.group(3)) if match.group(3) else None)
    return programs


def running_programs(app_image, container, timeout: float = 30) -> dict[str, tuple[str, int | None]]:
    """Wait until both services answer and supervisord counts both programs RUNNING (HTTP can answer
    before startsecs has passed, while supervisorctl still says STARTING and shows no pid)."""
    wait_ready(app_image, container)
    deadline = time.monotonic() + timeout
    while True:
        programs = program_pids(container)
        if (set(programs) == PROGRAMS and all(state == "RUNNING" for state, _ in programs.values())) \
                or time.monotonic() > deadline:
            return programs
        time.sleep(0.2)


PROGRAMS = {"kernel-broker", "sifu", "jupyter"}


def test_both_services_become_ready(app_image, container):
    ready = wait_ready(app_image, container)
    assert set(ready) == {"sifu", "jupyter"}
    # The Docker health check (HTTP on both ports) agrees.
    health = container.client.api.inspect_container(container.id)["State"].get("Health")
    assert health is not None


def uid_of(container, pid: int) -> str:
    return exec_out(container, "awk", "/^Uid:/{print $2}", f"/proc/{pid}/status").strip()


def test_runs_under_dumb_init_each_program_as_its_own_user(app_image, container):
    programs = running_programs(app_image, container)
    init = exec_out(container, "cat", "/proc/1/cmdline").split("\0")
    assert init[0].endswith("dumb-init") and init[1] == "--" and init[2:6] == ["python", "-I", "-m", "sifu.supervise"]
    # supervisord is root (so it can start each program as its user); Sifu and its workers run as sifu (1000),
    # Jupyter as jupyter (1001), the kernel broker as root; nothing else (kernels run as students' own uids).
    sifu, jupyter = programs["sifu"][1], programs["jupyter"][1]
    assert {uid_of(container, pid) for pid in {sifu, *children_of(container, sifu)}} == {"1000"}
    assert uid_of(container, jupyter) == "1001"
    assert uid_of(container, programs["kernel-broker"][1]) == "0"
    uids = exec_out(container, "bash", "-c", "for s in /proc/[0-9]*/status; do awk '/^Uid:/{print $2}' $s; done")
    assert set(uids.split()) <= {"0", "1000", "1001"}
    supervisord = int(exec_out(container, "cat", f"/proc/{sifu}/stat").rpartition(")")[2].split()[1])
    assert uid_of(container, supervisord) == "0"


def test_rendered_config_is_what_runs(app_image, container):
    programs = running_programs(app_image, container)
    assert set(programs) == PROGRAMS
    assert all(state == "RUNNING" for state, _ in programs.values()), programs
    jupyter_cmd = exec_out(container, "cat", f"/proc/{programs['jupyter'][1]}/cmdline").split("\0")
    assert "--config=/etc/sifu/jupyter_server_config.py" in jupyter_cmd
    sifu_cmd = exec_out(container, "cat", f"/proc/{programs['sifu'][1]}/cmdline").split("\0")
    assert sifu_cmd[1:3] == ["-m", "sifu"] and str(app_image.sifu_port) in sifu_cmd
    # Jupyter listens where the rendered config says (a per-session port, not a default).
    read_config = (
        "import json; from traitlets.config import Config; c = Config(); "
        "exec(open('/etc/sifu/jupyter_server_config.py').read(), {'get_config': lambda: c}); "
        "print(json.dumps({'port': c.ServerApp.port, 'root': c.ServerApp.root_dir}))"
    )
    with_config = json.loads(exec_out(container, "python", "-c", read_config))
    assert with_config == {"port": app_image.jupyter_port, "root": "/notebooks"}
    assert http_status(service_urls(app_image)["jupyter"]) == 200


def test_killing_a_program_makes_supervisord_restart_it(app_image, container):
    running_programs(app_image, container)
    for name in ("jupyter", "sifu"):
        _, old_pid = running_programs(app_image, container)[name]
        assert old_pid, f"{name} is not RUNNING: {program_pids(container)}"
        # supervisord starts each program in its own process group: kill the whole program (with
        # workers, gunicorn's master and them). bash's builtin kill, since the image has no procps.
        exec_out(container, "bash", "-c", f"kill -KILL -- -{old_pid}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state, pid = program_pids(container).get(name, (None, None))
            if state == "RUNNING" and pid and pid != old_pid:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"supervisord did not restart {name}: {program_pids(container)}\n{container.logs().decode()[-2000:]}")
        wait_ready(app_image, container, timeout=30)
    assert container.status != "exited"


def children_of(container, pid: int) -> set[int]:
    """PIDs whose parent is `pid`, from /proc (the image has no procps)."""
    out = exec_out(container, "bash", "-c", "for s in /proc/[0-9]*/stat; do read -r line < $s && echo \"$line\"; done 2>/dev/null || true")
    children = set()
    for line in out.splitlines():
        # pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'
        head, _, rest = line.rpartition(")")
        fields = rest.split()
        if head and len(fields) >= 2 and fields[1] == str(pid):
            children.add(int(head.split(" (", 1)[0]))
    return children


def alive(container, pid: int) -> bool:
    code, _ = container.exec_run(["bash", "-c", f"test -d /proc/{pid}"])
    return code == 0


def forked_workers(settings) -> int:
    """Processes under Sifu's own: none with one worker (uvicorn in Sifu's process), else gunicorn's workers."""
    return 0 if settings.sifu.workers == 1 else settings.sifu.workers


def test_sifu_comes_back_when_only_its_process_is_killed(app_image, container):
    """SIGKILL to Sifu's process alone (the one supervisord started). With workers, they must die with their
    master and free the port, or every restart by supervisord fails with "Address already in use" while
    orphans keep answering."""
    expected = forked_workers(app_image.settings)
    _, master = running_programs(app_image, container)["sifu"]
    assert master, f"Sifu is not RUNNING: {program_pids(container)}"
    deadline = time.monotonic() + 20
    while len(workers := children_of(container, master)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(workers) == expected, f"uvicorn workers of {master}: {workers}"
    killed_at = time.monotonic()
    exec_out(container, "bash", "-c", f"kill -KILL {master}")  # Sifu's process only, not its process group
    # Orphaned workers go (PR_SET_PDEATHSIG: SIGTERM, then uvicorn's graceful shutdown).
    deadline = time.monotonic() + 15
    while any(alive(container, pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in workers if alive(container, pid)]
    assert not survivors, f"workers outlived their master: {survivors}"
    # supervisord restarts Sifu, and the new process stays up (RUNNING = it lived past startsecs).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state, pid = program_pids(container).get("sifu", (None, None))
        if state == "RUNNING" and pid and pid != master:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"supervisord did not bring Sifu back: {program_pids(container)}\n{container.logs().decode()[-3000:]}")
    wait_ready(app_image, container, timeout=30)
    back_after = time.monotonic() - killed_at
    assert back_after < 30, f"Sifu answered /health only {back_after:.1f} s after its process was killed"
    assert len(children_of(container, pid)) == expected  # served by the new process (or its workers)
    assert "Address already in use" not in container.logs().decode(errors="replace")


def test_jupyter_loads_only_the_extensions_we_use(app_image, container):
    wait_ready(app_image, container)
    logs = container.logs().decode(errors="replace")
    loaded = set(re.findall(r"\] (\S+) \| extension was successfully loaded", logs))
    assert loaded == {"notebook", "sifu.jupyter"}, loaded
    # jsonschema's slow IRI checker (rfc3987-syntax) is not in the image, so Jupyter never imports it.
    exec_out(container, "python", "-c", "import sys, jsonschema._format; assert 'rfc3987_syntax' not in sys.modules")


def test_notebooks_survive_removing_and_recreating_the_container(app_image, docker_client, notebooks):
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    first = run_app(docker_client, app_image, notebooks)
    try:
        wait_ready(app_image, first)
        exec_out(first, "bash", "-c", "mkdir -p /notebooks/users/ada/course-v1:Org+1+Run "
                 f"&& printf '%s' '{json.dumps(notebook)}' > '/notebooks/users/ada/course-v1:Org+1+Run/intro.ipynb'")
    finally:
        first.remove(force=True)
    on_host = notebooks / "users" / "ada" / "course-v1:Org+1+Run" / "intro.ipynb"
    assert json.loads(on_host.read_text()) == notebook
    second = run_app(docker_client, app_image, notebooks)
    try:
        wait_ready(app_image, second)
        inside = exec_out(second, "cat", "/notebooks/users/ada/course-v1:Org+1+Run/intro.ipynb")
        assert json.loads(inside) == notebook
    finally:
        second.remove(force=True)


# Run in a student's kernel in the container: everything of Sifu's, supervisord's and the image's it might reach.
ATTEMPT = r'''
import errno, json, os
found = {}
def attempt(name, action):
    try:
        action()
        found[name] = "done"
    except OSError as exc:
        found[name] = errno.errorcode[exc.errno]
'''
HOSTILE_CELL = ATTEMPT + r'''
attempt("sifu_environ", lambda: open(f"/proc/{SIFU}/environ").read())
attempt("supervisord_environ", lambda: open(f"/proc/{SUPERVISORD}/environ").read())
attempt("state_dir", lambda: os.listdir("/var/lib/sifu"))
attempt("database", lambda: open("/var/lib/sifu/sifu.sqlite3", "rb").read(1))
attempt("base_notebook", lambda: open("/notebooks/courses/c/n.ipynb", "a").close())
attempt("new_base_notebook", lambda: open("/notebooks/courses/c/evil.ipynb", "w").close())
attempt("list_students", lambda: os.listdir("/notebooks/users"))
attempt("venv", lambda: open("/opt/venv/bin/evil", "w").close())
attempt("config", lambda: open("/etc/sifu/jupyter_server_config.py", "a").close())
attempt("signal_sifu", lambda: os.kill(SIFU, 0))
attempt("signal_supervisord", lambda: os.kill(SUPERVISORD, 0))
import site
for name, path in (("ipython_startup", "~/.ipython/profile_default/startup"), ("jupyter_config", "~/.jupyter"),
                   ("kernel_spec", "~/.local/share/jupyter/kernels/python3"), ("user_site", site.getusersitepackages())):
    attempt(name, lambda path=path: os.makedirs(os.path.expanduser(path)))
import resource
try:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    found["raise_memory_limit"] = "done"
except ValueError:
    found["raise_memory_limit"] = "refused"
found["secret_variables"] = sorted(k for k in os.environ if k.startswith(("SIFU_", "EDX_", "RDS_")))
found["uid"], found["groups"], found["home"] = os.getuid(), os.getgroups(), os.environ["HOME"]
json.dumps(found)
'''


EMPTY_NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def signed_in(container, jupyter_url: str, name: str) -> JupyterSession:
    """`name` as Sifu's sign-in leaves them (a token and their kernel uid) with a copy of course c's n.ipynb."""
    from sifu import signing
    from sifu.db import hash_token

    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    token = exec_out(container, "python", "-c", "from sifu import config; from sifu.db import TokenStore, UidStore, make_engine; "
                     f"e = make_engine(config.load().database_url); UidStore(e).allocate({name!r}); "
                     f"print(TokenStore(e).issue({name!r}, 3600)[0])", user="sifu").strip()
    exec_out(container, "python", "-c", "from pathlib import Path; from sifu import storage; "
             "storage.create_exclusive(Path('/notebooks/courses/c/n.ipynb'), b'{}'); "
             f"storage.create_exclusive(Path('/notebooks/users/{name}/c/n.ipynb'), {EMPTY_NOTEBOOK.encode()!r}, storage.STUDENT)",
             user="sifu")
    cookie = signing.sign_identity(env["SIFU_SECRET_KEY"].encode(), name, int(time.time()) + 3600, hash_token(token))
    return JupyterSession(jupyter_url, {signing.COOKIE_NAME: cookie})


def start_kernel(student: JupyterSession, name: str):
    assert student.prime_xsrf(f"/notebooks/users/{name}/c/n.ipynb").status_code == 200
    session = student.start_session(f"users/{name}/c/n.ipynb")
    assert session.status_code == 201, session.text
    return session.json()["kernel"]["id"]


def test_a_hostile_kernel_reaches_none_of_sifus_secrets_state_or_courses(app_image, container):
    """Issue 13, items 2, 4, 5, 8 and part of 6: different users for Sifu and Jupyter, modes on the volume, the
    kernel as the student's own uid with a private home (what it leaves there reaches only its own kernels; the
    home of Jupyter's user is read-only), and kernel limits a kernel cannot lift."""
    programs = running_programs(app_image, container)
    jupyter_url = f"http://127.0.0.1:{app_image.jupyter_port}"
    alice = signed_in(container, jupyter_url, "alice")
    try:
        kernel = start_kernel(alice, "alice")
        sifu = programs["sifu"][1]
        supervisord = int(exec_out(container, "cat", f"/proc/{sifu}/stat").rpartition(")")[2].split()[1])
        code = f"SIFU = {sifu}; SUPERVISORD = {supervisord}\n" + HOSTILE_CELL
        found = json.loads(execute(jupyter_url, kernel, alice.cookie_header(), code).strip("'"))
        for private in ("ipython_startup", "jupyter_config", "kernel_spec", "user_site"):
            found.pop(private)  # in the student's own home, read by their own kernels only
        uid = found.pop("uid")
        assert uid > 200_000 and found.pop("groups") == [] and found.pop("home") == f"/run/sifu-kernels/{uid}/home"
        assert found == {"sifu_environ": "EACCES", "supervisord_environ": "EACCES", "state_dir": "EACCES",
                         "database": "EACCES", "base_notebook": "EACCES", "new_base_notebook": "EACCES",
                         "list_students": "EACCES", "venv": "EACCES", "config": "EACCES", "signal_sifu": "EPERM",
                         "signal_supervisord": "EPERM", "raise_memory_limit": "refused",
                         "secret_variables": []}, found
        assert execute(jupyter_url, kernel, alice.cookie_header(), "6*7") == "42"
        # The student's own copy is still theirs to save.
        saved = alice.request("PUT", "/api/contents/users/alice/c/n.ipynb", json={
            "type": "notebook", "format": "json", "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}})
        assert saved.status_code == 200, saved.text
    finally:
        alice.close()


# Run in bob's kernel: alice's folder, her files, her kernel's connection file and sockets.
NEIGHBOUR_CELL = ATTEMPT + r'''
import socket
def connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
attempt("list_alice", lambda: os.listdir(ALICE))
attempt("read_alice", lambda: open(ALICE + "/c/n.ipynb").read())
attempt("write_alice", lambda: open(ALICE + "/c/n.ipynb", "a").close())
attempt("new_file_in_alice", lambda: open(ALICE + "/evil.ipynb", "w").close())
attempt("list_kernel_dirs", lambda: os.listdir("/run/sifu-kernels"))
attempt("list_alice_kernels", lambda: os.listdir(ALICE_KERNELS))
attempt("read_alice_connection_file", lambda: open(ALICE_CONNECTION).read())
attempt("connect_alice_shell", lambda: connect(ALICE_SOCKET))
attempt("signal_alice_kernel", lambda: os.kill(ALICE_PID, 0))
attempt("runtime_dir", lambda: os.listdir("/var/lib/jupyter-runtime"))
os.symlink(ALICE + "/c/n.ipynb", os.path.expanduser(BOB + "/c/stolen.ipynb"))
os.symlink(ALICE, BOB + "/alice")
json.dumps(found)
'''


def kernel_facts(container, jupyter_url: str, student: JupyterSession, kernel: str) -> dict:
    code = "import json, os; json.dumps({'uid': os.getuid(), 'pid': os.getpid(), 'cf': __import__('ipykernel.connect').connect.get_connection_file()})"
    return json.loads(execute(jupyter_url, kernel, student.cookie_header(), code).strip("'"))


def test_one_students_kernel_reaches_nothing_of_anothers(app_image, container):
    """Issue 13, items 3, 7 and 10: each kernel runs as its student's own uid; bob's cell gets EACCES/EPERM on
    alice's folder, files, connection file and ipc sockets; Jupyter will not serve bob's symlinks into alice's
    folder; both kernels keep answering."""
    running_programs(app_image, container)
    jupyter_url = f"http://127.0.0.1:{app_image.jupyter_port}"
    alice, bob = signed_in(container, jupyter_url, "alice"), signed_in(container, jupyter_url, "bob")
    try:
        alice_kernel, bob_kernel = start_kernel(alice, "alice"), start_kernel(bob, "bob")
        her, his = (kernel_facts(container, jupyter_url, s, k) for s, k in ((alice, alice_kernel), (bob, bob_kernel)))
        assert her["uid"] > 200_000 and his["uid"] > 200_000 and her["uid"] != his["uid"]
        kernels = f"/run/sifu-kernels/{her['uid']}"
        assert her["cf"].startswith(kernels + "/kernel-")
        socket_path = json.loads(exec_out(container, "cat", her["cf"]))["ip"] + "-" + str(
            json.loads(exec_out(container, "cat", her["cf"]))["shell_port"])
        code = (f"ALICE = '/notebooks/users/alice'; BOB = '/notebooks/users/bob'; ALICE_KERNELS = {kernels!r}; "
                f"ALICE_CONNECTION = {her['cf']!r}; ALICE_SOCKET = {socket_path!r}; ALICE_PID = {her['pid']}\n" + NEIGHBOUR_CELL)
        found = json.loads(execute(jupyter_url, bob_kernel, bob.cookie_header(), code).strip("'"))
        assert found == {"list_alice": "EACCES", "read_alice": "EACCES", "write_alice": "EACCES",
                         "new_file_in_alice": "EACCES", "list_kernel_dirs": "EACCES", "list_alice_kernels": "EACCES",
                         "read_alice_connection_file": "EACCES", "connect_alice_shell": "EACCES",
                         "signal_alice_kernel": "EPERM", "runtime_dir": "EACCES"}, found
        # Jupyter (whose group reaches every folder) does not follow bob's symlinks into alice's.
        for path in ("/api/contents/users/bob/c/stolen.ipynb", "/files/users/bob/c/stolen.ipynb",
                     "/api/contents/users/bob/alice/c/n.ipynb", "/files/users/bob/alice/c/n.ipynb"):
            assert bob.request("GET", path).status_code == 404, path
        listing = bob.request("GET", "/api/contents/users/bob/c")
        assert listing.status_code == 200 and "stolen.ipynb" not in listing.text
        for student, kernel in ((alice, alice_kernel), (bob, bob_kernel)):
            assert execute(jupyter_url, kernel, student.cookie_header(), "6*7") == "42"
        # The files stay the student's, in Jupyter's group: Jupyter still saves them.
        owner = exec_out(container, "stat", "-c", "%u:%G:%a", "/notebooks/users/alice/c/n.ipynb").strip()
        assert owner == f"{her['uid']}:sifu:660"
        saved = alice.request("PUT", "/api/contents/users/alice/c/n.ipynb", json={
            "type": "notebook", "format": "json", "content": json.loads(EMPTY_NOTEBOOK)})
        assert saved.status_code == 200, saved.text
    finally:
        alice.close()
        bob.close()


def test_without_the_broker_no_kernel_starts(app_image, container):
    """Fail closed: with the kernel broker stopped, Jupyter starts no kernel at all and says why."""
    running_programs(app_image, container)
    jupyter_url = f"http://127.0.0.1:{app_image.jupyter_port}"
    alice = signed_in(container, jupyter_url, "alice")
    try:
        exec_out(container, "supervisorctl", "--configuration", "/etc/sifu/supervisord.conf", "stop", "kernel-broker")
        assert alice.prime_xsrf("/notebooks/users/alice/c/n.ipynb").status_code == 200
        refused = alice.start_session("users/alice/c/n.ipynb")
        assert refused.status_code >= 500 and "kernel service is not running" in refused.text, refused.text
        pids = exec_out(container, "bash", "-c", "for s in /proc/[0-9]*/status; do awk '/^Uid:/{print $2}' $s; done")
        assert set(pids.split()) <= {"0", "1000", "1001"}  # nothing started as anyone else
        exec_out(container, "supervisorctl", "--configuration", "/etc/sifu/supervisord.conf", "start", "kernel-broker")
        deadline = time.monotonic() + 30
        while (session := alice.start_session("users/alice/c/n.ipynb")).status_code != 201 and time.monotonic() < deadline:
            time.sleep(0.5)  # RUNNING to supervisord a moment before its socket is bound
        assert session.status_code == 201, session.text
        kernel = session.json()["kernel"]["id"]
        assert execute(jupyter_url, kernel, alice.cookie_header(), "6*7") == "42"
    finally:
        alice.close()


def uids_running(container) -> set[str]:
    return set(exec_out(container, "bash", "-c", "for s in /proc/[0-9]*/status; do awk '/^Uid:/{print $2}' $s; done").split())


def test_a_brokered_kernel_interrupts_restarts_and_leaves_nothing_behind(app_image, container):
    """Through the broker: an interrupt (a message) stops a running cell, a restart gives a new kernel as the same
    uid, and shutting the kernel down kills whatever its student still runs, a setsid child included (item 6)."""
    import threading

    running_programs(app_image, container)
    jupyter_url = f"http://127.0.0.1:{app_image.jupyter_port}"
    alice = signed_in(container, jupyter_url, "alice")
    try:
        kernel = start_kernel(alice, "alice")
        before = kernel_facts(container, jupyter_url, alice, kernel)
        outcome: list[str] = []

        def long_cell() -> None:
            try:
                execute(jupyter_url, kernel, alice.cookie_header(), "import time; time.sleep(45)", timeout=40)
                outcome.append("finished")
            except AssertionError as exc:
                outcome.append(str(exc))

        cell = threading.Thread(target=long_cell)
        cell.start()
        time.sleep(2)
        assert alice.request("POST", f"/api/kernels/{kernel}/interrupt").status_code == 204
        cell.join(30)
        assert outcome and "KeyboardInterrupt" in outcome[0], outcome
        assert execute(jupyter_url, kernel, alice.cookie_header(), "6*7") == "42"
        assert alice.request("POST", f"/api/kernels/{kernel}/restart").status_code == 200
        after = kernel_facts(container, jupyter_url, alice, kernel)
        assert after["uid"] == before["uid"] and after["pid"] != before["pid"]
        execute(jupyter_url, kernel, alice.cookie_header(),
                "import subprocess; subprocess.Popen(['setsid', 'sleep', '600']).pid")
        assert str(after["uid"]) in uids_running(container)
        for session in alice.request("GET", "/api/sessions").json():
            assert alice.request("DELETE", f"/api/sessions/{session['id']}").status_code == 204
        deadline = time.monotonic() + 20
        while str(after["uid"]) in uids_running(container) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert str(after["uid"]) not in uids_running(container)
    finally:
        alice.close()


def test_the_line_inv_status_sends_answers_from_the_real_image(app_image, container, notebooks, docker_engine):
    """The exact shell line `inv status` sends over SSH (deployer/remote/commands.py student_usage), run here by
    bash with Debian's docker CLI against the test engine: it finds the container by its label and sifu.usage
    answers as root (PSS of another uid's processes is readable to root only)."""
    import os
    import subprocess

    from deployer.remote import commands, usage

    wait_ready(app_image, container)
    for name, uid, size in (("frank", 2042, 50_000), ("svc", 1001, 0)):  # 1001: Jupyter's own uid, running
        folder = notebooks / "users" / name
        folder.mkdir(parents=True)
        (folder / "a.ipynb").write_bytes(b"x" * size)
        for path in (folder, folder / "a.ipynb"):
            os.chown(path, uid, uid)
    line = commands.student_usage(app_image.settings.remote.container_filter, "/notebooks", sudo=False)
    done = subprocess.run(["bash", "-c", line], env={**os.environ, **docker_engine.env()}, capture_output=True,
                          text=True, timeout=120)
    found = usage.parse("i-1", "local", done.returncode, done.stdout, done.stderr)
    assert not found.error, found.error
    frank, svc = found.students["frank"], found.students["svc"]
    assert (frank.uid, frank.processes, frank.kernels) == (2042, 0, 0) and frank.disk_kib >= 48
    assert svc.processes >= 1 and svc.pss_kib is not None and 0 < svc.pss_kib <= svc.rss_kib
