"""Resource limits on students' kernels (issue 13, item 6, in part): a cell that takes all memory or writes a
huge file fails the designed way, its kernel is the OOM killer's first choice, and it still answers 6*7."""

from __future__ import annotations

import json

import pytest

from tests.integration.sifu.helpers import COURSE, prepare_copy, students_kernel
from tests.support.jupyter_client import execute

pytestmark = pytest.mark.integration
FILE = "limits.ipynb"

HOSTILE_CELL = r'''
import errno, json, os, resource, tempfile
found = {}
try:
    hog = bytearray(6 * 1024 ** 3)
    found["memory"] = "allocated"
except MemoryError:
    found["memory"] = "MemoryError"
with tempfile.TemporaryFile(buffering=0) as f:
    f.seek(1024 ** 3)
    try:
        f.write(b"x")
        found["file_size"] = "written"
    except OSError as exc:
        found["file_size"] = errno.errorcode[exc.errno]
found["oom_score_adj"] = int(open("/proc/self/oom_score_adj").read())
found["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
json.dumps(found)
'''


def test_a_hostile_cell_hits_the_limits_and_its_kernel_still_answers(sifu_stack):
    token = sifu_stack.token("alice")
    prepare_copy(sifu_stack.sifu.url, token, "alice", COURSE, FILE)
    with students_kernel(sifu_stack, token, "alice", FILE) as (alice, kernel):
        found = json.loads(execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(), HOSTILE_CELL).strip("'"))
        assert found == {"memory": "MemoryError", "file_size": "EFBIG", "oom_score_adj": 1000, "nofile": 1024}, found
        assert execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(), "6*7") == "42"
