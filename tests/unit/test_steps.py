"""The step runner: checks only in a plan, apply only where a check found changes, stop on failure."""

from dataclasses import dataclass, field

from deployer import steps
from deployer.checklist.context import Context
from deployer.steps import Action, Check, StepError


@dataclass
class Recorded:
    number: int
    name: str
    found: Check | None = None
    error: str | None = None
    applied: list = field(default_factory=list)

    def check(self, ctx):
        if self.error:
            raise StepError(self.error)
        return self.found

    def apply(self, ctx, check):
        self.applied.append(check)
        return f"did {len(check.actions)} thing(s)"


def context(dry_run):
    return Context(loaded=None, dry_run=dry_run)


def test_plan_runs_checks_only():
    changing = Recorded(1, "one", Check.change("needs work", Action("create", "thing")))
    report = steps.run([changing, Recorded(2, "two", Check.ok("fine"))], context(True), quiet=True)
    assert changing.applied == []
    assert [s.status for s in report.steps] == ["planned", "ok"]
    assert report.steps[0].actions == ["create thing"]
    assert report.summary() == "1 step(s) would change"


def test_apply_only_where_changes_were_found():
    clean, dirty = Recorded(1, "a", Check.ok("fine")), Recorded(2, "b", Check.change("x", Action("update", "y")))
    report = steps.run([clean, dirty], context(False), quiet=True)
    assert clean.applied == [] and len(dirty.applied) == 1
    assert report.steps[1].summary == "did 1 thing(s)"


def test_nothing_to_do_says_no_changes():
    report = steps.run([Recorded(1, "a", Check.ok("fine"))], context(False), quiet=True)
    assert report.summary() == "no changes"
    assert report.as_json()["result"] == "no changes"


def test_failure_stops_the_run_and_is_reported():
    after = Recorded(3, "after", Check.change("x", Action("create", "z")))
    report = steps.run([Recorded(1, "a", Check.ok("fine")), Recorded(2, "b", error="registry unreachable; check ecr.region"), after],
                       context(False), quiet=True)
    assert after.applied == []
    assert [s.number for s in report.steps] == [1, 2]
    assert report.failed.error == "registry unreachable; check ecr.region"
    assert report.as_json()["result"] == "failed"
    assert "step 2" in report.summary()


def test_apply_with_unbuilt_steps_is_incomplete():
    report = steps.run([Recorded(1, "a", Check("pending", "later"))], context(False), quiet=True)
    assert report.as_json()["result"] == "incomplete"
    assert "not built yet" in report.summary()


def test_json_counts_and_redaction():
    from deployer import ui

    ui.register_secret("hunter2-secret")
    ctx = context(True)
    ctx.counters.aws_read, ctx.counters.bytes_pushed = 3, 0
    report = steps.run([Recorded(1, "a", Check.change("token hunter2-secret seen", Action("put", "param")))], ctx, quiet=True)
    data = report.as_json()
    assert data["aws_calls"] == {"read": 3, "mutate": 0}
    assert "hunter2-secret" not in str(data)
    assert set(data) >= {"mode", "result", "steps", "aws_calls", "bytes_pushed", "elapsed_seconds"}


def test_an_apply_that_found_nothing_to_change_reports_ok():
    class RunsToKnow(Recorded):
        def apply(self, ctx, check):  # e.g. converge: only running its idempotent script tells
            self.applied.append(check)
            return steps.Unchanged("3 instance(s) already converged")

    step = RunsToKnow(1, "converge", Check.change("3 instance(s)", Action("converge", "a, b, c")))
    report = steps.run([step], context(False), quiet=True)
    assert len(step.applied) == 1
    assert (report.steps[0].status, report.steps[0].summary, report.steps[0].actions) == (
        "ok", "3 instance(s) already converged", [])
    assert report.summary() == "no changes"
