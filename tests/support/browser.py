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
