"""Students of the rehearsal's site, run as the sandbox's clients (`client python -m tests.integration.rehearsal.student
...`), where the environment's CNAME resolves to its load balancer. Each command prints one JSON line.

- ``journey``: the XBlock's flow by hand (devlms auth code, Sifu's /token, the student's copy), the serve request
  repeated until an instance other than the token's issuer answers it, then Jupyter through the load balancer
  (sticky): a session, 6*7 on the kernel, the notebook saved and read back. Every response's X-Served-By is kept.
- ``load``: N students each calling Sifu (token, copy exists, serve) in a loop until a file appears; counts per
  status code, and per instance.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.integration.sifu.helpers import COURSE, serve_url, user_call
from tests.support.jupyter_client import JupyterSession, execute

SERVED_BY = "X-Served-By"


def auth_code(lms: str, client_id: str, redirect_uri: str, username: str) -> str:
    reply = httpx.post(f"{lms}/oauth2/authorize", timeout=30, data={
        "username": username, "password": f"{username}-pass", "client_id": client_id, "redirect_uri": redirect_uri,
        "state": "s"})
    if reply.status_code != 302:
        raise RuntimeError(f"devlms refused {username}: {reply.status_code} {reply.text[:200]}")
    return parse_qs(urlsplit(reply.headers["location"]).query)["code"][0]


def token(args: argparse.Namespace, username: str) -> httpx.Response:
    return httpx.post(f"{args.sifu}/token", headers={"Authorization": "Bearer None"}, timeout=30, json={
        "username": username, "auth_code": auth_code(args.lms, args.client_id, args.redirect_uri, username),
        "grant_type": "edx_auth_code", "path": "create"})


def journey(args: argparse.Namespace) -> dict:
    issued = token(args, args.user)
    issued.raise_for_status()
    access = issued.json()["access_token"]
    found = {"token_by": issued.headers.get(SERVED_BY)}
    base = {"notey_notey": {"course": COURSE, "file": args.file}}
    auth = {"Authorization": f"Bearer {access}"}
    if not httpx.request("GET", f"{args.sifu}/v1/api/notebooks/courses/files/", headers=auth, json=base,
                         timeout=30).json()["result"]:
        httpx.post(f"{args.sifu}/v1/api/notebooks/courses/files/", headers=auth, timeout=30, json={
            "notey_notey": {**base["notey_notey"], "data": json.dumps(NOTEBOOK)}}).raise_for_status()
    assert user_call("POST", args.sifu, access, args.user, COURSE, args.file).json() == {"result": True}
    for _ in range(6):  # round robin: another instance answers within two tries
        served = httpx.get(serve_url(args.sifu, args.user, COURSE, args.file, access), timeout=30)
        if served.headers.get(SERVED_BY) != found["token_by"]:
            break
    found.update(serve_status=served.status_code, serve_by=served.headers.get(SERVED_BY))
    location = served.headers["location"]
    cookies = {name: value for name, value in served.cookies.items()}
    session = JupyterSession(args.jupyter, cookies)
    try:
        page = session.prime_xsrf(urlsplit(location).path)
        assert page.status_code == 200, (page.status_code, page.headers.get(SERVED_BY), page.text[:300])
        path = f"users/{args.user}/{COURSE}/{args.file}"
        started = session.start_session(path)
        assert started.status_code == 201, started.text
        kernel = started.json()["kernel"]["id"]
        found["result"] = execute(args.jupyter, kernel, session.cookie_header(), "6*7")
        notebook = session.request("GET", f"/api/contents/{path}").json()["content"]
        notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": f"saved by {args.user}"})
        saved = session.request("PUT", f"/api/contents/{path}", json={"type": "notebook", "content": notebook})
        read = session.request("GET", f"/api/contents/{path}")
        found.update(page_status=page.status_code, saved=saved.status_code,
                     read_back=read.json()["content"]["cells"][-1]["source"],
                     jupyter_by=sorted({r.headers.get(SERVED_BY) for r in (page, started, saved, read)}),
                     kernel_still_there=session.request("GET", f"/api/kernels/{kernel}").status_code)
    finally:
        session.close()
    return found


def load(args: argparse.Namespace) -> dict:
    statuses: Counter = Counter()
    instances: Counter = Counter()
    failures: list[str] = []
    stop = Path(args.until)

    def student(n: int) -> None:
        name = f"student-{n}"
        first = token(args, name).json()["access_token"]
        user_call("POST", args.sifu, first, name, COURSE, args.file).raise_for_status()
        while not stop.exists():
            try:
                issued = token(args, name)
                replies = [issued]
                if issued.status_code == 200:
                    access = issued.json()["access_token"]
                    replies.append(user_call("GET", args.sifu, access, name, COURSE, args.file))
                    replies.append(httpx.get(serve_url(args.sifu, name, COURSE, args.file, access), timeout=30))
                for reply in replies:
                    statuses[reply.status_code] += 1
                    instances[reply.headers.get(SERVED_BY)] += 1
                    if reply.status_code >= 500 or reply.status_code in (401, 403, 404):
                        failures.append(f"{reply.request.method} {reply.request.url.path} {reply.status_code}")
            except httpx.HTTPError as exc:
                statuses["error"] += 1
                failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(args.pause)

    threads = [threading.Thread(target=student, args=(n,), daemon=True) for n in range(1, args.students + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"statuses": {str(k): v for k, v in statuses.items()}, "instances": dict(instances),
            "failures": failures[:20], "failed": len(failures)}


NOTEBOOK = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "markdown", "metadata": {}, "source": "# Rehearsal"},
    {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": "6*7"}]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["journey", "load"])
    for option in ("--lms", "--sifu", "--jupyter", "--client-id", "--redirect-uri", "--file"):
        parser.add_argument(option, required=True)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--until", default="")
    args = parser.parse_args(argv)
    print(json.dumps(journey(args) if args.command == "journey" else load(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
