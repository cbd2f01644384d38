"""schemathesis generates requests from Sifu's /openapi.json: no request may cause a server error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.sifu.helpers import COURSE, prepare_copy

pytestmark = pytest.mark.integration


def test_openapi_fuzzing_finds_no_server_errors(sifu_stack, tmp_path):
    token = sifu_stack.token("alice")
    prepare_copy(sifu_stack.sifu.url, token, "alice", COURSE, "Lab 1.ipynb")  # the documented example
    schemathesis = Path(sys.executable).parent / "schemathesis"
    argv = [str(schemathesis), "run", f"{sifu_stack.sifu.url}/openapi.json", "--checks", "not_a_server_error",
            "--max-examples", "60", "--seed", "1", "-H", f"Authorization: Bearer {token}",
            "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=540, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SCHEMATHESIS_HOOKS": ""})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    print(output)
    assert re.search(r"(\d+) generated, \1 passed", output), "every generated case must pass"
    # The API was really exercised, and the service still works afterwards.
    assert (tmp_path / "junit.xml").stat().st_size > 0
    assert sifu_stack.token("alice")
