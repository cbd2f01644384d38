"""Debian's Chromium driven by Playwright (executable_path; Playwright never downloads a browser).

Host names map to loopback with --host-resolver-rules, so pages can live on distinct sites
(lms.test, notebooks.test) without touching /etc/hosts.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


@contextmanager
def chromium(home: Path, host_map: dict[str, str] | None = None, extra_flags: tuple[str, ...] = ()):
    """A browser whose HOME (and so its NSS trust store) is `home`; yields a Playwright Browser."""
    from playwright.sync_api import sync_playwright

    args = [*FLAGS, *extra_flags]
    if host_map:
        rules = ", ".join(f"MAP {name} {address}" for name, address in host_map.items())
        args.append(f"--host-resolver-rules={rules}")
    env = {**os.environ, "HOME": str(home)}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, env=env)
        try:
            yield browser
        finally:
            browser.close()


def wait_for_frame(page, predicate, timeout: float = 60.0):
    """The first child frame whose URL satisfies predicate. Waits with page.wait_for_timeout: the sync
    API only takes in browser events during Playwright calls (time.sleep would never see the frame)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames[1:]:
            if predicate(frame.url):
                return frame
        page.wait_for_timeout(200)
    raise AssertionError(f"no matching frame within {timeout:.0f}s; frames: {[f.url for f in page.frames]}")


def accept_kernel_dialog(frame) -> None:
    """Notebook 7 asks "Select Kernel" when its first kernel start races the page load; the default
    choice (the notebook's python3) is what a student would accept. Looks once, does not wait for one."""
    dialog = frame.locator(".jp-Dialog .jp-mod-accept")
    if dialog.is_visible():
        dialog.click()
        dialog.wait_for(state="detached", timeout=10_000)


def wait_for_idle_kernel(page, frame, timeout: float = 60.0) -> None:
    """Until the notebook has a kernel and it is idle, accepting the "Select Kernel" dialog whenever it shows.
    Notebook 7's status reads "idle" from the page's start, before any kernel (its kernel name then says "No
    Kernel"): a cell run then is lost. Polls with page.wait_for_timeout, so that the sync API takes in browser
    events meanwhile."""
    import time

    idle = frame.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
    kernel = frame.locator(".jp-Toolbar-kernelName")
    deadline = time.monotonic() + timeout
    while not (idle.is_visible() and kernel.count() and kernel.first.get_attribute("aria-label") not in ("No Kernel", None)):
        accept_kernel_dialog(frame)
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel was not idle within {timeout:.0f} s on {frame.url}")
        page.wait_for_timeout(50)


def run_in_first_cell(page, frame, code: str, expect: str) -> None:
    """Type code into the first code cell and run it (Shift+Enter) until its output shows `expect`.

    Once more if the first try got lost: Notebook 7 may swap the kernel it starts while the page is still
    loading (two POST /api/sessions), which drops an execution sent at that moment, or show its "Select
    Kernel" dialog after the kernel was idle, over the cell.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    editor = frame.locator(".jp-CodeCell .cm-content").first
    editor.wait_for(timeout=60_000)
    # Typing before the kernel's first idle is lost or races Notebook 7's model set-up: wait for it.
    wait_for_idle_kernel(page, frame)
    output = frame.locator(".jp-CodeCell .jp-OutputArea-output").filter(has_text=expect).first
    for attempt in range(2):
        try:
            accept_kernel_dialog(frame)
            editor.click(timeout=10_000)
            page.keyboard.press("Control+A")
            page.keyboard.type(code)
            page.keyboard.press("Shift+Enter")
            output.wait_for(timeout=30_000 * (attempt + 1))
            return
        except PlaywrightTimeout:
            if attempt:
                raise
