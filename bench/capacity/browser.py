"""Click to first result in Chromium (issue 14, item 2), for bench/click_to_result.py: both sides' pages, real.

Debian's Chromium through Playwright (tests/support/browser.py). Each visit is a fresh browser context (a new cookie
jar); the sign-in is done first and not timed; the clock runs from opening the page a student opens after signing in
until the first cell's output `42` shows, the way tests/e2e/test_student_journey.py runs a cell (the notebook's
kernel idle, then `6*7` typed into the first cell and Shift+Enter):
- ours: devlms's course page (server side the XBlock's /token and the student's copy), the iframe following
  Sifu's serve redirect to Notebook 7 through nginx, the kernel through the broker;
- JupyterHub: /hub/spawn/NAME?next=the notebook (what the home page's start button and a notebook link do
  together): the spawn-pending page until the server is up, then Notebook 7 on the student's server.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bench.capacity.jupyterhub import PASSWORD  # noqa: E402
from tests.support.browser import run_in_first_cell, wait_for_frame, wait_for_idle_kernel  # noqa: E402
from tests.support.sifu_stack import demo_password  # noqa: E402

VIEWPORT = {"width": 1280, "height": 1000}
IDLE_TIMEOUT = 300  # s: Notebook 7 took minutes to settle at a load average of 20 on the 2 shared cores


def first_result(page, frame) -> None:
    """Wait for the notebook's kernel to be idle (accepting Notebook 7's "Select Kernel" dialog whenever it shows),
    then run the first cell; a screenshot if the kernel never got idle."""
    try:
        wait_for_idle_kernel(page, frame, IDLE_TIMEOUT)
    except AssertionError:
        page.screenshot(path=str(Path(tempfile.gettempdir()) / f"click-to-result-failed-{int(time.time())}.png"))
        raise
    run_in_first_cell(page, frame, "6*7", expect="42")


def ours_visit(browser, ours, username: str, file: str, course: str) -> float:
    """Seconds from opening the course page (signed in at devlms) to `42` under the first cell."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        signed_in = context.request.post(f"{ours.devlms.url}/login", max_redirects=0,
                                         form={"username": username, "password": demo_password(username), "next": "/"})
        assert signed_in.status == 303, signed_in.text()[:300]
        page = context.new_page()
        started = time.perf_counter()
        page.goto(ours.stack.course_page(file, course))
        prefix = f"{ours.jupyter_url}/notebooks/users/{username}/"
        first_result(page, wait_for_frame(page, lambda url: url.startswith(prefix)))
        return time.perf_counter() - started
    finally:
        context.close()


def hub_visit(browser, hub, username: str, file: str) -> float:
    """Seconds from opening the hub's spawn URL for the notebook (signed in at the hub) to `42` under the first cell."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{hub.url}/hub/login?next={quote('/hub/home', safe='')}")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url(f"{hub.url}/hub/home")
        started = time.perf_counter()
        page.goto(f"{hub.url}/hub/spawn/{username}?next={quote(f'/user/{username}/notebooks/{file}', safe='')}")
        page.wait_for_url(f"{hub.url}/user/{username}/notebooks/**", timeout=180_000)
        first_result(page, page.main_frame)
        return time.perf_counter() - started
    finally:
        context.close()
