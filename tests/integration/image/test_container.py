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
        if (set(programs) == {"sifu", "jupyter"} and all(state == "RUNNING" for state, _ in programs.values())) \
                or time.monotonic() > deadline:
            return programs
        time.sleep(0.2)


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
    assert init[0].endswith("dumb-init") and init[1] == "--" and init[2] == "supervisord"
    # supervisord is root (so it can start each program as its user); Sifu and its workers run as sifu (1000),
    # Jupyter as jupyter (1001); nothing else.
    sifu, jupyter = programs["sifu"][1], programs["jupyter"][1]
    assert {uid_of(container, pid) for pid in {sifu, *children_of(container, sifu)}} == {"1000"}
    assert uid_of(container, jupyter) == "1001"
    uids = exec_out(container, "bash", "-c", "for s in /proc/[0-9]*/status; do awk '/^Uid:/{print $2}' $s; done")
    assert set(uids.split()) <= {"0", "1000", "1001"}
    supervisord = int(exec_out(container, "cat", f"/proc/{sifu}/stat").rpartition(")")[2].split()[1])
    assert uid_of(container, supervisord) == "0"


def test_rendered_config_is_what_runs(app_image, container):
    programs = running_programs(app_image, container)
    assert set(programs) == {"sifu", "jupyter"}
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
        # supervisord starts each program in its own process group: kill the whole program (uvicorn's
        # master and its workers). bash's builtin kill, since the image has no procps.
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


def test_sifu_comes_back_when_only_its_master_is_killed(app_image, container):
    """SIGKILL to uvicorn's master alone: its workers must die with it and free the port, or every restart
    by supervisord fails with "Address already in use" while orphans keep answering."""
    _, master = running_programs(app_image, container)["sifu"]
    assert master, f"Sifu is not RUNNING: {program_pids(container)}"
    deadline = time.monotonic() + 20
    while len(workers := children_of(container, master)) < app_image.settings.sifu.workers and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(workers) == app_image.settings.sifu.workers, f"uvicorn workers of {master}: {workers}"
    killed_at = time.monotonic()
    exec_out(container, "bash", "-c", f"kill -KILL {master}")  # the master only, not its process group
    # The orphaned workers go (PR_SET_PDEATHSIG: SIGTERM, then uvicorn's graceful shutdown).
    deadline = time.monotonic() + 15
    while any(alive(container, pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in workers if alive(container, pid)]
    assert not survivors, f"workers outlived their master: {survivors}"
    # supervisord restarts Sifu, and the new master stays up (RUNNING = it lived past startsecs).
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
    assert back_after < 30, f"Sifu answered /health only {back_after:.1f} s after its master was killed"
    assert len(children_of(container, pid)) == app_image.settings.sifu.workers  # served by the new master's workers
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
HOSTILE_CELL = r'''
import errno, json, os
found = {}
def attempt(name, action):
    try:
        action()
        found[name] = "done"
    except OSError as exc:
        found[name] = errno.errorcode[exc.errno]
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
json.dumps(found)
'''


def test_a_hostile_kernel_reaches_none_of_sifus_secrets_state_or_courses(app_image, container):
    """Issue 13, items 2, 4, 5, 8 and part of 6: different users for Sifu and Jupyter, modes on the volume, a
    read-only home for Jupyter's user, and kernel limits a kernel cannot lift."""
    from sifu import signing
    from sifu.db import hash_token

    programs = running_programs(app_image, container)
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    token = exec_out(container, "python", "-c", "from sifu import config; from sifu.db import TokenStore, make_engine; "
                     "print(TokenStore(make_engine(config.load().database_url)).issue('alice', 3600)[0])", user="sifu").strip()
    exec_out(container, "python", "-c", "from pathlib import Path; from sifu import storage; "
             "storage.create_exclusive(Path('/notebooks/courses/c/n.ipynb'), b'{}'); "
             "storage.create_exclusive(Path('/notebooks/users/alice/c/n.ipynb'), b'{\"cells\": [], \"metadata\": {}, "
             "\"nbformat\": 4, \"nbformat_minor\": 5}', storage.STUDENT)", user="sifu")
    cookie = signing.sign_identity(env["SIFU_SECRET_KEY"].encode(), "alice", int(time.time()) + 3600, hash_token(token))
    jupyter_url = f"http://127.0.0.1:{app_image.jupyter_port}"
    alice = JupyterSession(jupyter_url, {signing.COOKIE_NAME: cookie})
    try:
        assert alice.prime_xsrf("/notebooks/users/alice/c/n.ipynb").status_code == 200
        session = alice.start_session("users/alice/c/n.ipynb")
        assert session.status_code == 201, session.text
        kernel = session.json()["kernel"]["id"]
        sifu = programs["sifu"][1]
        supervisord = int(exec_out(container, "cat", f"/proc/{sifu}/stat").rpartition(")")[2].split()[1])
        code = f"SIFU = {sifu}; SUPERVISORD = {supervisord}\n" + HOSTILE_CELL
        found = json.loads(execute(jupyter_url, kernel, alice.cookie_header(), code).strip("'"))
        assert found == {"sifu_environ": "EACCES", "supervisord_environ": "EACCES", "state_dir": "EACCES",
                         "database": "EACCES", "base_notebook": "EACCES", "new_base_notebook": "EACCES",
                         "list_students": "EACCES", "venv": "EACCES", "config": "EACCES", "signal_sifu": "EPERM",
                         "signal_supervisord": "EPERM", "ipython_startup": "EACCES", "jupyter_config": "EACCES",
                         "kernel_spec": "EACCES", "user_site": "EACCES", "raise_memory_limit": "refused",
                         "secret_variables": []}, found
        assert execute(jupyter_url, kernel, alice.cookie_header(), "6*7") == "42"
        # The student's own copy is still theirs to save.
        saved = alice.request("PUT", "/api/contents/users/alice/c/n.ipynb", json={
            "type": "notebook", "format": "json", "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}})
        assert saved.status_code == 200, saved.text
    finally:
        alice.close()
