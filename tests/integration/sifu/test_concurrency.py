"""Concurrent creators of one student copy end with exactly one intact file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from tests.integration.sifu.helpers import COURSE, base_create, user_call
from tests.support.sifu_stack import REPO, start_sifu

pytestmark = pytest.mark.integration

_CREATOR = """
import sys, time
from pathlib import Path
from sifu.storage import create_exclusive
target, payload, start = Path(sys.argv[1]), sys.argv[2].encode() * 20000, float(sys.argv[3])
while time.time() < start:
    pass
print(create_exclusive(target, payload))
"""


def test_two_processes_creating_one_file_leave_exactly_one_intact_file(tmp_path):
    import time

    for round_ in range(10):
        target = tmp_path / f"r{round_}" / "copy.ipynb"
        start = time.time() + 0.5
        procs = [subprocess.Popen([sys.executable, "-c", _CREATOR, str(target), letter, str(start)], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True) for letter in "AB"]
        results = [p.communicate(timeout=30)[0].strip() for p in procs]
        assert sorted(results) == ["False", "True"], results
        content = target.read_bytes()
        assert content in (b"A" * 20000, b"B" * 20000)  # one writer's whole file, never a mix
        assert [p.name for p in target.parent.iterdir()] == ["copy.ipynb"]  # no temporary files left


def test_two_sifu_instances_racing_on_one_copy(sifu_stack, tmp_path):
    second = start_sifu(tmp_path, sifu_stack.sifu.env, name="sifu-race")
    try:
        token = sifu_stack.token("bob")
        base_create(sifu_stack.sifu.url, token, COURSE, "race.ipynb")
        base = (sifu_stack.root / "courses" / COURSE / "race.ipynb").read_bytes()
        barrier = threading.Barrier(8)
        replies = []

        def create(url: str) -> None:
            barrier.wait()
            replies.append(user_call("POST", url, token, "bob", COURSE, "race.ipynb"))

        threads = [threading.Thread(target=create, args=(url,)) for url in [sifu_stack.sifu.url, second.url] * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert [r.json() for r in replies] == [{"result": True}] * 8
        folder = sifu_stack.root / "users" / "bob" / COURSE
        assert [p.name for p in folder.iterdir() if "race" in p.name] == ["race.ipynb"]
        assert (folder / "race.ipynb").read_bytes() == base
        json.loads(base)
    finally:
        second.stop()
