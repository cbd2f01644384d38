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
    choice (the notebook's python3) is what a student would accept."""
    dialog = frame.locator(".jp-Dialog .jp-mod-accept")
    try:
        dialog.wait_for(timeout=1500)
    except Exception:  # playwright TimeoutError: no dialog
        return
    dialog.click()
    dialog.wait_for(state="detached", timeout=10_000)


def run_in_first_cell(page, frame, code: str, expect: str) -> None:
    """Type code into the first code cell and run it (Shift+Enter) until its output shows `expect`.

    A second Shift+Enter only if the first got lost: Notebook 7 may swap the kernel it starts while
    the page is still loading (two POST /api/sessions), which drops an execution sent at that moment.
    """
    editor = frame.locator(".jp-CodeCell .cm-content").first
    editor.wait_for(timeout=60_000)
    # Typing before the kernel's first idle is lost or races Notebook 7's model set-up: wait for it.
    accept_kernel_dialog(frame)
    frame.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=60_000)
    output = frame.locator(".jp-CodeCell .jp-OutputArea-output").filter(has_text=expect).first
    for attempt in range(2):
        accept_kernel_dialog(frame)
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(code)
        page.keyboard.press("Shift+Enter")
        try:
            output.wait_for(timeout=30_000 * (attempt + 1))
            return
        except Exception:  # playwright TimeoutError: run it once more
            if attempt:
                raise
