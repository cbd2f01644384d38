"""The generic step runner: a step is a read-only check() plus an idempotent apply().

A plan (dry run) runs only the checks. A deploy runs, for each step, the check and then apply()
when the check found something to change. Each step prints its seed number, what it found or
changed, and its timing; --json gives the same as data, with AWS calls and bytes pushed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from deployer import ui

CheckStatus = Literal["ok", "change", "pending"]
ResultStatus = Literal["ok", "changed", "planned", "failed", "pending", "skipped"]


class StepError(Exception):
    """A step cannot go on; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Action:
    """One change a step would make (plan) or made (apply)."""

    verb: str
    target: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.verb} {self.target}" + (f" ({self.detail})" if self.detail else "")


class Unchanged(str):
    """Returned by an apply() that ran and found nothing to change (e.g. converge over SSH, whose only
    honest check is running its idempotent script): the step is reported "ok", not "changed"."""


@dataclass
class Check:
    """What a read-only check found: nothing to do ("ok"), changes to make, or not built yet."""

    status: CheckStatus
    summary: str
    actions: list[Action] = field(default_factory=list)

    @classmethod
    def ok(cls, summary: str) -> Check:
        return cls("ok", summary)

    @classmethod
    def change(cls, summary: str, *actions: Action) -> Check:
        return cls("change", summary, list(actions))


@dataclass
class Counters:
    """Side effects measured during a run; the AWS layer and the pusher add to these."""

    aws_read: int = 0
    aws_mutate: int = 0
    bytes_pushed: int = 0
    waited_seconds: float = 0.0
    mutating_calls: list[str] = field(default_factory=list)


class RunContext(Protocol):
    """What the runner needs of a run's context (deployer.checklist.context.Context has more)."""

    dry_run: bool
    counters: Counters


class Step(Protocol):
    number: int | str
    name: str

    def check(self, ctx: Any) -> Check: ...

    def apply(self, ctx: Any, check: Check) -> str | None:
        """Make the changes the check found; return a summary of what changed."""


class ReadOnly:
    """A step whose check() is all it does: it reports what it found and has nothing to apply."""

    def apply(self, ctx: Any, check: Check) -> str | None:
        return None


@dataclass
class StepResult:
    number: int | str
    name: str
    status: ResultStatus
    summary: str
    actions: list[str]
    seconds: float
    error: str | None = None


@dataclass
class RunReport:
    mode: Literal["plan", "apply"]
    steps: list[StepResult]
    counters: Counters
    elapsed: float

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    @property
    def pending(self) -> list[StepResult]:
        return [s for s in self.steps if s.status == "pending"]

    @property
    def changed(self) -> bool:
        return any(s.status in ("changed", "planned") for s in self.steps)

    def summary(self) -> str:
        if self.failed:
            return f"failed at step {self.failed.number} ({self.failed.name}): {self.failed.error}"
        if self.mode == "apply" and self.pending:
            numbers = ", ".join(str(s.number) for s in self.pending)
            return f"incomplete: step(s) {numbers} are not built yet, so nothing was deployed to AWS"
        if not self.changed:
            return "no changes"
        count = sum(1 for s in self.steps if s.status in ("changed", "planned"))
        return f"{count} step(s) {'would change' if self.mode == 'plan' else 'changed'}"

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "result": "failed" if self.failed else ("incomplete" if self.mode == "apply" and self.pending
                                                     else "changes" if self.changed else "no changes"),
            "summary": ui.redact(self.summary()),
            "steps": [{**asdict(s), "seconds": round(s.seconds, 3), "summary": ui.redact(s.summary), "actions": [ui.redact(a) for a in s.actions],
                       "error": ui.redact(s.error) if s.error else None} for s in self.steps],
            "aws_calls": {"read": self.counters.aws_read, "mutate": self.counters.aws_mutate},
            "mutating_calls": self.counters.mutating_calls,
            "bytes_pushed": self.counters.bytes_pushed,
            "waited_seconds": round(self.counters.waited_seconds, 3),
            "elapsed_seconds": round(self.elapsed, 3),
        }


def run(steps: list[Step], ctx: RunContext, quiet: bool = False) -> RunReport:
    """Check every step; unless dry-run, apply the ones with changes. Stops at the first failure."""
    started = time.monotonic()
    results: list[StepResult] = []
    for step in steps:
        t0 = time.monotonic()
        if not quiet:
            ui.step_start(step.number, step.name)
        try:
            found = step.check(ctx)
            if found.status == "pending":
                result = StepResult(step.number, step.name, "pending", found.summary, [], time.monotonic() - t0)
            elif found.status == "ok":
                result = StepResult(step.number, step.name, "ok", found.summary, [], time.monotonic() - t0)
            elif ctx.dry_run:
                result = StepResult(step.number, step.name, "planned", found.summary, [str(a) for a in found.actions], time.monotonic() - t0)
            else:
                done = step.apply(ctx, found)
                if isinstance(done, Unchanged):
                    result = StepResult(step.number, step.name, "ok", str(done), [], time.monotonic() - t0)
                else:
                    result = StepResult(step.number, step.name, "changed", done or found.summary, [str(a) for a in found.actions], time.monotonic() - t0)
        except StepError as exc:
            result = StepResult(step.number, step.name, "failed", "", [], time.monotonic() - t0, str(exc))
        results.append(result)
        if not quiet:
            _print(result)
        if result.status == "failed":
            break
    return RunReport("plan" if ctx.dry_run else "apply", results, ctx.counters, time.monotonic() - started)


def _print(result: StepResult) -> None:
    detail = result.error if result.status == "failed" else result.summary
    ui.say(ui.step_line(result.number, result.name, result.status, result.seconds, detail))
    for action in result.actions:
        ui.say(ui.action_line(action))
