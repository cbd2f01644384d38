"""After the environment is Ready: seed steps 14e (converge the instances over SSH) and 14f (the smoke check
through the environment's URL)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from deployer.checklist.aws_calls import live_environment
from deployer.checklist.context import Context
from deployer.remote import executor, hooks, targets
from deployer.steps import Action, Check, StepError, Unchanged


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


@dataclass
class SmokeCheck:
    """Seed step 14 (smoke): through the environment's URL, Sifu's /health answers and Jupyter refuses a
    request without identity. Read-only, so it is the check itself; a failure fails the deploy."""

    number: int | str = "14f"
    name: str = "Smoke check"

    def urls(self, ctx: Context, cname: str) -> tuple[str, str]:
        s = ctx.settings
        sifu = (s.smoke.sifu_url or f"http://{cname}:{s.ports.sifu}").rstrip("/")
        jupyter = (s.smoke.jupyter_url or f"http://{cname}:{s.ports.jupyter}").rstrip("/")
        return f"{sifu}/health", f"{jupyter}/api/contents"

    def check(self, ctx: Context) -> Check:
        if ctx.dry_run:
            return Check.ok("runs after the deploy: Sifu /health answers, Jupyter refuses a request without identity")
        if not ctx.wait:
            return Check.ok("not waiting (--no-wait): no smoke check")
        env = live_environment(ctx)
        if env is None or env.get("Status") != "Ready" or not env.get("CNAME"):
            raise StepError("the environment is not Ready, so there is nothing to smoke-check; see `inv status`")
        health, contents = self.urls(ctx, env["CNAME"])
        deadline = time.monotonic() + ctx.settings.smoke.timeout
        while True:
            problem = self._problem(health, contents)
            if problem is None:
                return Check.ok(f"{health} answers 200; {contents} refuses a request without identity")
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

    def apply(self, ctx: Context, check: Check) -> str | None:
        return None


def _get(url: str, timeout: float = 10) -> tuple[int, str]:
    """(status, body) of a GET without following redirects; status 0 when nothing answered."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)
