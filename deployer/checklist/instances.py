"""After the environment is Ready: seed steps 14e (converge the instances over SSH) and 14f (the smoke check
through the environment's URL)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from deployer import names, ui
from deployer.aws import ssm
from deployer.checklist.aws_calls import live_environment, plain_aws_errors
from deployer.checklist.context import Context
from deployer.remote import executor, hooks, targets
from deployer.steps import Action, Check, ReadOnly, StepError, Unchanged


@dataclass
class ConvergeInstances:
    """Seed step 14 (instances): mount the notebook volume and point nginx at the app container on every
    instance, over SSH (the same script as the .platform hook, so a re-run changes only what differs)."""

    number: int | str = "14e"
    name: str = "Converge the instances"

    def check(self, ctx: Context) -> Check:
        if not ctx.wait and not ctx.dry_run:
            return Check.ok("not waiting (--no-wait): converge later with `inv converge`")
        env = live_environment(ctx)
        if env is None or env.get("Status") != "Ready":
            return Check.ok("no Ready environment yet: the deploy converges its instances once it is Ready")
        try:
            hosts = targets.environment_hosts(ctx.settings, ctx.aws().client("ec2"))
        except targets.NoTargets as exc:
            if ctx.dry_run:
                return Check.ok(str(exc))
            raise StepError(str(exc)) from None
        ctx.facts.converge_hosts = hosts
        if ctx.dry_run:
            # Only running the (idempotent) script tells whether something differs, so the plan says so.
            return Check.ok(f"{len(hosts)} instance(s): the deploy runs converge over SSH, which changes only "
                            "what differs")
        return Check.change(f"{len(hosts)} instance(s)", Action("converge", ", ".join(hosts), "mount, nginx"))

    def apply(self, ctx: Context, check: Check) -> str | None:
        hosts = ctx.facts.converge_hosts
        try:
            result = executor.converge(hosts, ctx.settings, ctx.facts.for_converge())
        except hooks.ConvergeError as exc:
            raise StepError(f"cannot converge: {exc}") from None
        if result.failed:
            reasons = "; ".join(f"{h.host}: {h.error}" for h in result.failed)
            raise StepError(f"converge failed on {len(result.failed)} of {len(hosts)} instance(s): {reasons}. "
                            "Fix it and run the deploy again (or `inv converge`)")
        changed = [f"{h.host} ({', '.join(h.changed)})" for h in result.hosts if h.changed]
        if not changed:
            return Unchanged(f"{len(hosts)} instance(s) already converged")
        return f"converged {len(hosts)} instance(s); changed: {'; '.join(changed)}"


# The smoke check's base notebook: created, found and deleted through Sifu's API (a course no edX course key
# looks like, so it never meets a real one).
SMOKE_COURSE = "sifu-smoke"
BASE_NOTEBOOKS = "/v1/api/notebooks/courses/files/"
SMOKE_NOTEBOOK = json.dumps({"cells": [], "metadata": {"sifu-smoke": True}, "nbformat": 4, "nbformat_minor": 5})


@dataclass
class SmokeCheck(ReadOnly):
    """Seed step 14 (smoke): through the environment's URL, Sifu's /health answers, Jupyter refuses a request
    without identity, and Sifu writes, reads back and deletes a base notebook on the shared volume (as the
    service token from SSM, i.e. as staff). It leaves nothing behind; a failure fails the deploy."""

    number: int | str = "14f"
    name: str = "Smoke check"

    def urls(self, ctx: Context, cname: str) -> tuple[str, str, str]:
        s = ctx.settings
        # The URLs students use: https when the listeners are (a certificate names web.public_host, not the CNAME).
        base = f"{'https' if s.web.https else 'http'}://{s.web.public_host or cname}"
        sifu = (s.smoke.sifu_url or f"{base}:{s.ports.sifu}").rstrip("/")
        jupyter = (s.smoke.jupyter_url or f"{base}:{s.ports.jupyter}").rstrip("/")
        return f"{sifu}/health", f"{jupyter}/api/contents", f"{sifu}{BASE_NOTEBOOKS}"

    def check(self, ctx: Context) -> Check:
        if ctx.dry_run:
            return Check.ok("runs after the deploy: Sifu /health answers, Jupyter refuses a request without identity, "
                            "Sifu writes, reads back and deletes a notebook")
        if not ctx.wait:
            return Check.ok("not waiting (--no-wait): no smoke check")
        env = live_environment(ctx)
        if env is None or env.get("Status") != "Ready" or not env.get("CNAME"):
            raise StepError("the environment is not Ready, so there is nothing to smoke-check; see `inv status`")
        health, contents, notebooks = self.urls(ctx, env["CNAME"])
        token = self._service_token(ctx)
        deadline = time.monotonic() + ctx.settings.smoke.timeout
        while True:
            problem = self._problem(health, contents) or self._round_trip(notebooks, token)
            if problem is None:
                return Check.ok(f"{health} answers 200; {contents} refuses a request without identity; "
                                f"Sifu wrote, read back and deleted a notebook in course {SMOKE_COURSE}")
            if time.monotonic() >= deadline:
                raise StepError(f"smoke check failed after {ctx.settings.smoke.timeout:.0f} s: {problem}. "
                                "See `inv logs` and `inv status`")
            started = time.monotonic()
            ctx.sleep(1.0)
            ctx.counters.waited_seconds += time.monotonic() - started

    @staticmethod
    def _problem(health: str, contents: str) -> str | None:
        status, body = _get(health)
        if status != 200:
            return f"{health} answered {status or 'nothing'}{': ' + body[:200] if body else ''}"
        status, _ = _get(contents)
        if status == 200:
            return f"{contents} answered 200 without identity: Jupyter must refuse anonymous requests"
        if status == 0:
            return f"{contents} did not answer"
        return None

    @staticmethod
    def _service_token(ctx: Context) -> str:
        name = names.secret_parameter(ctx.settings, "SIFU_SERVICE_TOKEN")
        with plain_aws_errors():
            token = ssm.secure_value(ctx.aws().client("ssm"), name)
        if not token:
            raise StepError(f"SSM parameter {name} is missing: step 14a generates it; run the deploy again")
        ui.register_secret(token)
        return token

    @staticmethod
    def _round_trip(url: str, token: str) -> str | None:
        """Create, find and delete one base notebook through Sifu; what went wrong, or None."""
        notebook = {"course": SMOKE_COURSE, "file": f"smoke-{secrets.token_hex(6)}.ipynb"}
        calls = [("POST", {**notebook, "data": SMOKE_NOTEBOOK}, True, "write"), ("GET", notebook, True, "read back"),
                 ("DELETE", notebook, True, "delete"), ("GET", notebook, False, "find deleted")]
        for method, params, expected, what in calls:
            status, body = _get(url, method=method, token=token, payload={"notey_notey": params})
            if status != 200 or _result(body) is not expected:
                return (f"Sifu could not {what} {SMOKE_COURSE}/{params['file']} ({method} {url} answered "
                        f"{status or 'nothing'}: {body[:200]}); is the notebook root writable by the app user?")
        return None


def _result(body: str) -> bool | None:
    try:
        return json.loads(body).get("result")
    except (ValueError, AttributeError):
        return None


def _get(url: str, timeout: float = 10, method: str = "GET", token: str = "", payload: dict | None = None) -> tuple[int, str]:
    """(status, body) of a request without following redirects; status 0 when nothing answered. With a token,
    as `Authorization: Bearer`; with a payload, a JSON body (Sifu takes one on GET and DELETE too)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if payload is not None:
        data, headers["Content-Type"] = json.dumps(payload).encode(), "application/json"
    try:
        with opener.open(urllib.request.Request(url, data=data, headers=headers, method=method), timeout=timeout) as response:
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)
