"""A student in Chromium, run as the rehearsal's client (`client python -m tests.integration.rehearsal.browser
...`), where the environment's CNAME resolves to its load balancer and the sandbox's CA stands in for ACM's.

Signs in at devlms, opens the course page (devlms runs the XBlock's flow against Sifu, the iframe follows
Sifu's serve redirect to Jupyter through the load balancer), runs 6*7 in the framed notebook and saves it.
Prints one JSON line: the result, and per Jupyter response which instance served it (X-Served-By) and which
passed it on (X-Routed-By).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from tests.integration.sifu.helpers import COURSE
from tests.support.browser import chromium, run_in_first_cell, wait_for_frame


def trust(home: Path, ca_file: str) -> None:
    """Chromium reads its trust from NSS in $HOME; only the sandbox's CA is added."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "sandbox", "-t", "C,,", "-i", ca_file],
                   check=True, capture_output=True)


def journey(args: argparse.Namespace) -> dict:
    home = Path(args.home)
    trust(home, args.ca_file)
    jupyter: list[dict] = []
    with chromium(home) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})

        def seen(response):
            if response.url.startswith(args.jupyter):
                jupyter.append({"method": response.request.method, "url": response.url.split("?")[0][len(args.jupyter):],
                                "status": response.status,
                                "served_by": response.headers.get("x-served-by"),
                                "routed_by": response.headers.get("x-routed-by")})

        page.on("response", seen)
        page.goto(f"{args.lms}/courses/{quote(COURSE, safe='')}/notebooks/{quote(args.file, safe='')}")
        page.fill("input[name=username]", args.user)
        page.fill("input[name=password]", f"{args.user}-pass")
        page.click("button[type=submit]")
        page.wait_for_selector("iframe#notebook")
        frame = wait_for_frame(page, lambda url: url.startswith(f"{args.jupyter}/notebooks/users/{args.user}/"))
        run_in_first_cell(page, frame, "6*7", expect="42")
        with page.expect_response(lambda r: r.request.method == "PUT" and "/api/contents/" in r.url,
                                  timeout=60_000) as save:
            frame.locator("[data-command='docmanager:save']").first.click()  # the toolbar's save button
        saved = save.value.status
        page.close()
    return {"result": "42", "saved": saved, "jupyter": jupyter}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    for option in ("--lms", "--jupyter", "--file", "--ca-file", "--home"):
        parser.add_argument(option, required=True)
    parser.add_argument("--user", default="alice")
    print(json.dumps(journey(parser.parse_args(argv))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
