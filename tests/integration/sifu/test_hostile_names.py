"""Every hostile name is refused over HTTP, and nothing is created outside the notebook root."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.integration.sifu.helpers import COURSE, auth, prepare_copy
from tests.support.hostile_names import HOSTILE_NAMES

pytestmark = pytest.mark.integration


def _snapshot(top: Path, root: Path) -> set[str]:
    """Every path under the stack's work directory except the notebook root and logs that grow anyway."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(top):
        if Path(dirpath) == root or root in Path(dirpath).parents:
            continue
        for name in dirnames + filenames:
            seen.add(str(Path(dirpath, name).relative_to(top)))
    return seen


def test_hostile_names_are_refused_and_nothing_escapes_the_root(sifu_stack):
    assert len(HOSTILE_NAMES) >= 30
    token = sifu_stack.token("alice")
    prepare_copy(sifu_stack.sifu.url, token, "alice", COURSE, "good.ipynb")
    url = sifu_stack.sifu.url
    before = _snapshot(sifu_stack.workdir, sifu_stack.root)
    inside_before = {p for p in sifu_stack.root.rglob("*")}
    data = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    for name in HOSTILE_NAMES:
        calls = [
            ("POST", "/v1/api/notebooks/courses/files/", {"course": name, "file": "f.ipynb", "data": data}),
            ("POST", "/v1/api/notebooks/courses/files/", {"course": COURSE, "file": name, "data": data}),
            ("GET", "/v1/api/notebooks/courses/files/", {"course": name, "file": "good.ipynb"}),
            ("POST", "/v1/api/notebooks/users/courses/files/", {"username": "alice", "course": COURSE, "file": name}),
            ("POST", "/v1/api/notebooks/users/courses/files/", {"username": "alice", "course": name, "file": "good.ipynb"}),
            ("DELETE", "/v1/api/notebooks/users/courses/files", {"username": "alice", "course": name, "file": "good.ipynb"}),
            ("GET", "/v1/api/notebooks/users/courses/files", {"username": name, "course": COURSE, "file": "good.ipynb"}),
        ]
        for method, path, inner in calls:
            reply = httpx.request(method, url + path, headers=auth(token), json={"notey_notey": inner})
            assert 400 <= reply.status_code < 500, (method, path, repr(name), reply.status_code, reply.text)
            assert reply.json()["result"] is False
        # The serve URL takes names from the path: refused before any file is looked at.
        serve = httpx.get(f"{url}/v1/api/notebooks/users/alice/courses/{COURSE}/files/{quote(name, safe='')}",
                          headers=auth(token))
        assert serve.status_code in (400, 403, 404, 405), (repr(name), serve.status_code)
        assert "location" not in serve.headers
    assert _snapshot(sifu_stack.workdir, sifu_stack.root) - before <= {"sifu.log", "devlms.log", "jupyter.log"}
    assert {p for p in sifu_stack.root.rglob("*")} == inside_before
