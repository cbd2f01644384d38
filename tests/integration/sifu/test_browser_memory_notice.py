"""In Chromium, on Notebook 7's own page: the memory notes of sifu/kernel_memory.py show in the cell's output
(a cell past the address-space limit, and a kernel killed by SIGKILL as the OOM killer does)."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest

from sifu.kernel_memory import LIMIT
from tests.integration.sifu.helpers import COURSE, base_create, serve_url, user_call
from tests.support.browser import chromium

pytestmark = pytest.mark.integration
FILE = "browser-memory.ipynb"
RAN = "() => !/\\[\\s*\\]/.test(document.querySelector('.jp-CodeCell .jp-InputPrompt').textContent)"


def _notebook(source: str) -> str:
    return json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": [source]}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5})


def _open_and_run(stack, username: str, file: str, source: str, browser):
    token = stack.token(username)
    assert base_create(stack.sifu.url, token, COURSE, file, _notebook(source)).status_code == 200
    assert user_call("POST", stack.sifu.url, token, username, COURSE, file).json() == {"result": True}
    page = browser.new_page()
    page.goto(serve_url(stack.sifu.url, username, COURSE, file, token))
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # On a busy machine Notebook can show the kernel idle before it takes a cell: the cell then stays "[ ]".
    for _attempt in range(3):
        page.click(".jp-CodeCell .cm-content")
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(RAN, timeout=10_000)
            return page
        except PlaywrightTimeout:
            continue
    raise AssertionError("Notebook never ran the cell")


@pytest.mark.parametrize("case", ["MemoryError", "SIGKILL"])
def test_notebook_shows_the_memory_note_in_the_cell(sifu_stack, tmp_path, case):
    source = ("hog = bytearray(6 * 1024 ** 3)" if case == "MemoryError"
              else "import os, time\nprint('pid', os.getpid(), flush=True)\ntime.sleep(120)")
    with chromium(tmp_path) as browser:
        page = _open_and_run(sifu_stack, "alice", f"{case}-{FILE}", source, browser)
        if case == "SIGKILL":
            page.wait_for_selector(".jp-OutputArea-output >> text=/pid \\d+/", timeout=60_000)
            pid = int(re.search(r"pid (\d+)", page.inner_text(".jp-OutputArea-output")).group(1))
            os.kill(pid, signal.SIGKILL)
            expected = f"used more than its memory limit ({LIMIT} per kernel"
        else:
            expected = f"more memory than your kernel may use ({LIMIT} per kernel)"
        page.wait_for_selector(f".jp-OutputArea-output >> text={expected}", timeout=60_000)
        page.close()
