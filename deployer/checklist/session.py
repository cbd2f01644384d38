"""What the AWS-facing steps share: the run's AWS access, plain SDK errors, our tags.

Below every step module, so the steps import it and never each other.
"""

from __future__ import annotations

from contextlib import contextmanager

from deployer.aws import Aws, eb, sdk_errors
from deployer.steps import Context, StepError


def aws_for(ctx: Context) -> Aws:
    """The run's AWS access (created once): read-only in a dry run, counting calls into ctx.counters."""
    if "aws" not in ctx.facts:
        def count(service: str, operation: str, kind: str) -> None:
            if kind == "read":
                ctx.counters.aws_read += 1
            else:
                ctx.counters.aws_mutate += 1
                ctx.counters.mutating_calls.append(f"{service}.{operation}")

        settings = ctx.settings
        ctx.facts["aws"] = Aws(profile=settings.aws.profile or None, region=settings.eb.region,
                               read_only=ctx.dry_run, on_call=count)
    return ctx.facts["aws"]


@contextmanager
def plain_aws_errors():
    """An SDK error inside a step ends the step with the SDK's plain message."""
    try:
        yield
    except sdk_errors() as exc:
        raise StepError(str(exc)) from None


def tags(ctx: Context) -> dict[str, str]:
    """The tags on everything the deploy creates."""
    return {"project": ctx.settings.project.name, "sifu:environment": ctx.settings.eb.environment}


def live_environment(ctx: Context) -> dict | None:
    """The Elastic Beanstalk environment as it is now, or None."""
    s = ctx.settings
    with plain_aws_errors():
        return eb.find_environment(aws_for(ctx).client("elasticbeanstalk"), s.eb.application, s.eb.environment)
