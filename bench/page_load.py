"""Benchmark: a student's first visit to a notebook in Chromium over a throttled network, Jupyter's vhost with and
without compression of Notebook 7's files (issue 14, item 2: click to first result, in the browser).

Run: .venv/bin/python bench/page_load.py [--rounds 3]

The process-mode stack (Sifu, Jupyter, devlms; tests/support/sifu_stack.py) with two nginx in front of the same
Jupyter, both from the rendered vhosts: one as rendered (Notebook 7's files compressed, .nginx/vhost.conf.j2), one
with its compression switched off (everything passed through whole, as before). A student signs in the XBlock's way;
then each round opens the student's notebook once through each nginx, in turn, each in a fresh browser context
(an empty cache: a first visit), with Chromium's network emulation (CDP Network.emulateNetworkConditions) set to
each profile in PROFILES. Measured per visit: bytes received (the sum of Chromium's encodedDataLength, what
crossed the emulated network), and the time from navigation until Notebook 7 shows the notebook's cell and until
its kernel is idle.

Appends a section to bench/RESULTS.md ending in
`- first visit, compressed / uncompressed (PROFILE): RATIO` per profile (medians of the time to kernel idle).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.kernel_roundtrip import FILE, process_stack, put_nginx_in_front, sign_in  # noqa: E402
from bench.record import record  # noqa: E402
from tests.integration.sifu.helpers import COURSE  # noqa: E402
from tests.support.browser import CHROMIUM, chromium  # noqa: E402

# (name, download bit/s, upload bit/s, added round-trip latency ms)
PROFILES = [("20 Mbit/s, 40 ms", 20e6, 5e6, 40), ("100 Mbit/s, 20 ms", 100e6, 20e6, 20)]


def without_compression(text: str) -> str:
    """A vhost with its compression switched off (every `gzip on;` in it); nothing else differs."""
    if "sifu_jupyter_" in text and "gzip on;" not in text:
        raise ValueError("Jupyter's rendered vhost compresses nothing: the bench would compare nothing")
    return text.replace("gzip on;", "gzip off;")


def first_visit(browser, site: str, path: str, cookies: dict[str, str], profile: tuple) -> dict[str, float]:
    """One visit in a fresh context: bytes received, seconds to the cell shown and to the kernel idle."""
    _, down, up, latency = profile
    context = browser.new_context()
    try:
        context.add_cookies([{"name": name, "value": value, "url": site} for name, value in cookies.items()])
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        received: dict[str, float] = {}
        cdp.on("Network.loadingFinished", lambda event: received.__setitem__(event["requestId"], event["encodedDataLength"]))
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency,
                                                      "downloadThroughput": down / 8, "uploadThroughput": up / 8})
        started = time.monotonic()
        page.goto(site + path, wait_until="commit")
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", state="attached", timeout=120_000)
        shown = time.monotonic() - started
        page.wait_for_function("() => document.querySelector('.jp-Dialog') || "
                               "document.querySelector('.jp-Notebook-ExecutionIndicator[data-status=\"idle\"]')",
                               timeout=120_000)
        if page.locator(".jp-Dialog").count():  # Notebook 7 asked which kernel: python3, as a student would
            page.locator(".jp-Dialog .jp-mod-accept").click()
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
        idle = time.monotonic() - started
        page.wait_for_timeout(500)  # requests still finishing (settings, translations) count too
        return {"bytes": sum(received.values()), "shown": shown, "idle": idle}
    finally:
        context.close()


def report(results: dict[str, dict[str, list[dict[str, float]]]], rounds: int) -> list[str]:
    lines = [
        "Process-mode stack, two nginx in front of one Jupyter, both rendered from .nginx/vhost.conf.j2: as rendered",
        "(Notebook 7's files compressed) and with its compression switched off. Chromium (Debian's, Playwright), a fresh",
        f"context per visit (first visit: empty cache), the network emulated per profile; {rounds} visits a side per",
        "profile, the sides in turn. Medians.",
        "",
        "| network | vhost | MB received | notebook shown s | kernel idle s |",
        "|---|---|---:|---:|---:|",
    ]
    ratios = []
    for profile, sides in results.items():
        for side, visits in sides.items():
            lines.append(f"| {profile} | {side} | {statistics.median(v['bytes'] for v in visits) / 1e6:.2f} | "
                         f"{statistics.median(v['shown'] for v in visits):.2f} | {statistics.median(v['idle'] for v in visits):.2f} |")
        on, off = (statistics.median(v["idle"] for v in sides[side]) for side in ("compressed", "uncompressed"))
        ratios.append(f"- first visit, compressed / uncompressed ({profile}): {on / off:.2f}")
    lines.append("")
    return lines + ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"page_load: Chromium not found at {CHROMIUM}")
    username = "alice"
    with process_stack("pageload") as (exits, workdir, stack):
        urls = {"compressed": put_nginx_in_front(exits, workdir, "compressed", stack.sifu.url, stack.jupyter.url),
                "uncompressed": put_nginx_in_front(exits, workdir, "uncompressed", stack.sifu.url, stack.jupyter.url,
                                                   without_compression)}
        cookies = sign_in(stack, urls["compressed"]["sifu"], username)
        page = f"/notebooks/users/{username}/{quote(COURSE)}/{FILE}"
        results: dict[str, dict[str, list[dict[str, float]]]] = {}
        with chromium(workdir / "browser-home") as browser:
            for profile in PROFILES:
                sides = results.setdefault(profile[0], {"compressed": [], "uncompressed": []})
                for i in range(args.rounds):
                    order = list(sides) if i % 2 == 0 else list(reversed(sides))
                    for side in order:
                        visit = first_visit(browser, urls[side]["jupyter"], page, cookies, profile)
                        sides[side].append(visit)
                        print(f"{profile[0]} {side}: {visit['bytes'] / 1e6:.2f} MB, shown {visit['shown']:.2f} s, "
                              f"idle {visit['idle']:.2f} s", flush=True)
    record("first visit in Chromium over a throttled network: Notebook 7's files compressed or not "
           "(bench/page_load.py)", report(results, args.rounds))

if __name__ == "__main__":
    main()
