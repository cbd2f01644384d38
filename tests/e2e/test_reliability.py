"""Reliability of the running stack: container restart, Jupyter killed inside, 50 students at once."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import pytest

from tests.support.e2e_stack import COURSE, STUDENTS, random_file, wait_until
from tests.support.jupyter_client import execute

pytestmark = pytest.mark.e2e

FIND_AND_KILL_JUPYTER = """
import os, signal
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            cmd = open(f'/proc/{pid}/cmdline', 'rb').read().split(b'\\0')
        except OSError:
            continue
        if any(b'jupyter' in part for part in cmd[:3]) and b'supervisord' not in b' '.join(cmd):
            os.kill(int(pid), signal.SIGKILL)
            print(pid)
"""


def test_saved_content_survives_a_container_restart(e2e_stack):
    file = random_file("restart")
    student, path = e2e_stack.jupyter_session("alice", file)
    try:
        notebook = student.http.get(f"/api/contents/{quote(path)}").json()["content"]
        notebook["cells"][1]["source"] = "marker = 'saved before the restart'"
        saved = student.request("PUT", f"/api/contents/{quote(path)}", json={"type": "notebook", "format": "json", "content": notebook})
        assert saved.status_code == 200, saved.text
    finally:
        student.close()
    before = e2e_stack.copy_path("alice", file).read_bytes()
    ready = e2e_stack.restart_container()
    assert set(ready) == {"sifu", "jupyter"}
    assert e2e_stack.copy_path("alice", file).read_bytes() == before
    student, path = e2e_stack.jupyter_session("alice", file)  # the XBlock flow again, after the restart
    try:
        content = student.http.get(f"/api/contents/{quote(path)}").json()["content"]
        assert "".join(content["cells"][1]["source"]) == "marker = 'saved before the restart'"
    finally:
        student.close()


def test_supervisord_restarts_a_killed_jupyter_and_a_new_kernel_runs(e2e_stack):
    container = e2e_stack.container()
    killed = container.exec_run(["/opt/venv/bin/python", "-c", FIND_AND_KILL_JUPYTER])
    assert killed.exit_code == 0 and killed.output.split(), killed.output
    # nginx answers 502 while Jupyter is down; supervisord brings it back
    wait_until(lambda: httpx.get(f"{e2e_stack.jupyter_url}/api").status_code == 200, timeout=60, what="Jupyter back")
    student, path = e2e_stack.jupyter_session("bob", random_file("killed"))
    try:
        session = student.start_session(path)
        assert session.status_code == 201, session.text
        assert execute(e2e_stack.jupyter_url, session.json()["kernel"]["id"], student.cookie_header(), "6*7") == "42"
        student.request("DELETE", f"/api/sessions/{session.json()['id']}")
    finally:
        student.close()
    pids = container.exec_run(["/opt/venv/bin/python", "-c", FIND_AND_KILL_JUPYTER.replace("os.kill(int(pid), signal.SIGKILL)", "pass")])
    assert set(pids.output.split()).isdisjoint(killed.output.split())


def test_fifty_students_open_the_course_page_at_once(e2e_stack):
    """Each of 50 students opens the page in two tabs at the same moment (100 XBlock flows through
    nginx, then the serve redirect): no errors, and each copy is created once, intact."""
    file = random_file("crowd")
    barrier = threading.Barrier(2 * STUDENTS, timeout=60)

    def student(username: str) -> tuple[str, int]:
        with httpx.Client(timeout=120, follow_redirects=False) as client:
            barrier.wait()
            serve_url = e2e_stack.open_course_page(client, username, file)
            serve = client.get(serve_url)
            return username, serve.status_code

    users = [f"student-{n}" for n in range(1, STUDENTS + 1)] * 2
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        futures = [pool.submit(student, user) for user in users]
        results, errors = [], []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                errors.append(repr(exc)[:300])
    elapsed = time.monotonic() - started
    assert errors == [], errors[:5]
    assert all(status == 302 for _, status in results), [r for r in results if r[1] != 302][:5]
    base = (e2e_stack.root / "courses" / COURSE / file).read_bytes()
    for n in range(1, STUDENTS + 1):
        folder = e2e_stack.copy_path(f"student-{n}", file).parent
        mine = [p.name for p in folder.iterdir() if file.removesuffix(".ipynb") in p.name or p.name.startswith(".")]
        assert mine == [file]  # exactly one file, no temporary leftovers
        assert (folder / file).read_bytes() == base  # the whole base, never a partial write
        assert json.loads(base)["nbformat"] == 4
    print(f"{2 * STUDENTS} concurrent course-page flows in {elapsed:.1f}s")
