"""A student, in Chromium, signs in at devlms, opens the course page and runs a cell in the framed notebook.

Everything is real and goes the production way: devlms runs the XBlock flow against Sifu through
nginx; the iframe follows Sifu's serve redirect to Jupyter (Notebook 7) through nginx; the kernel's
websocket passes nginx; the saved .ipynb lands in the bind-mounted notebook root.
"""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.browser import chromium, run_in_first_cell, wait_for_frame
from tests.support.e2e_stack import random_file

pytestmark = pytest.mark.e2e


def text_of(value) -> str:
    """A multi-line string as nbformat stores it: a string, or a list of lines (what Jupyter writes)."""
    return "".join(value) if isinstance(value, list) else value


def notebook_frame(page, stack, username: str):
    prefix = f"{stack.jupyter_url}/notebooks/users/{username}/"
    return wait_for_frame(page, lambda url: url.startswith(prefix))


def sign_in(page, stack, file: str, username: str, password: str) -> None:
    page.goto(stack.course_page(file))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("iframe#notebook")


def test_student_runs_a_cell_saves_and_finds_it_after_reload(e2e_stack, tmp_path):
    file = random_file("journey")
    with chromium(tmp_path) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        saves: list[str] = []  # what Notebook 7 sent to save: shown if the file lacks the output

        def record_save(route, request):
            # Read in a route: in the request events post_data came back empty for these PUTs (measured
            # with Debian's Chromium) although the PUT carried the whole notebook.
            if request.method == "PUT":
                saves.append(f"{request.url.split('?')[0]}: {(request.post_data_buffer or b'').decode(errors='replace')[:600]}")
            route.continue_()

        page.route("**/api/contents/**", record_save)
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        sign_in(page, e2e_stack, file, "alice", "alice-pass")
        frame = notebook_frame(page, e2e_stack, "alice")
        assert "/alice/" in frame.url and file in frame.url  # the student's own copy
        editor = frame.locator(".jp-CodeCell .cm-content").first
        editor.wait_for(timeout=60_000)
        run_in_first_cell(page, frame, "6*7", expect="42")
        frame.locator("[data-command='docmanager:save']").first.click()  # the toolbar's save button
        copy = e2e_stack.copy_path("alice", file)

        def code_outputs():
            return [o for c in json.loads(copy.read_text())["cells"] if c["cell_type"] == "code"
                    for o in c.get("outputs", [])]

        def saved_output():
            # On disk Jupyter writes text/plain "42" as ["42"] (nbformat splits multi-line strings into lines).
            return [o for o in code_outputs() if text_of(o.get("data", {}).get("text/plain", "")) == "42"]

        deadline = time.monotonic() + 30
        while not saved_output() and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        assert saved_output(), (f"42 was not saved in the .ipynb on the notebook root; its code cells' outputs: {code_outputs()}; "
                                f"PUTs: {saves}; console: {console[-15:]}")
        page.reload()
        page.wait_for_selector("iframe#notebook")
        frame = notebook_frame(page, e2e_stack, "alice")
        frame.locator(".jp-OutputArea-output").filter(has_text="42").first.wait_for(timeout=60_000)
        page.close()
    source = json.loads(copy.read_text())["cells"]
    assert any(c["cell_type"] == "code" and text_of(c["source"]) == "6*7" for c in source)
    # On the bind-mounted root, owned by the student's own kernel uid (the kernel broker handed the folder over)
    # and still in Sifu's group, so Jupyter saved it.
    assert copy.stat().st_uid > 200_000


def test_student_interrupts_a_long_cell_then_restarts_the_kernel_and_runs_again(e2e_stack, tmp_path):
    """Through nginx, in Notebook 7's toolbar: interrupt reaches the student's own kernel (run by the broker as
    the student's uid, `interrupt_mode: message`) and restart gives a fresh kernel that answers."""
    file = random_file("interrupt")
    with chromium(tmp_path) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        sign_in(page, e2e_stack, file, "bob", "bob-pass")
        frame = notebook_frame(page, e2e_stack, "bob")
        run_in_first_cell(page, frame, "x = 6*7; x", expect="42")
        editor = frame.locator(".jp-CodeCell .cm-content").first
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("import time; time.sleep(600)")
        page.keyboard.press("Shift+Enter")
        frame.locator('.jp-Notebook-ExecutionIndicator[data-status="busy"]').wait_for(timeout=30_000)
        frame.locator("[data-command='notebook:interrupt-kernel']").first.click()
        frame.locator(".jp-OutputArea-output").filter(has_text="KeyboardInterrupt").first.wait_for(timeout=30_000)
        frame.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=30_000)
        # The same kernel, still alive after the interrupt: its state is there.
        run_in_first_cell(page, frame, "x + 1", expect="43")
        frame.locator("[data-command='notebook:restart-kernel']").first.click()
        frame.locator(".jp-Dialog .jp-mod-accept").click()
        frame.locator(".jp-Dialog").wait_for(state="detached", timeout=10_000)
        # Until the restart shows ("restarting", then "starting"), the status still reads the old kernel's "idle".
        restarting = frame.locator('.jp-Notebook-ExecutionIndicator:not([data-status="idle"])')
        try:
            restarting.wait_for(timeout=5_000)
        except PlaywrightTimeout:
            pass  # the restart was already over
        # A fresh kernel: the old state is gone, and it answers.
        run_in_first_cell(page, frame, "'x' in globals()", expect="False")
        page.close()
