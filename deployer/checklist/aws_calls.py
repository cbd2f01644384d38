"""How the AWS-facing steps call AWS: SDK errors as plain step failures, and the environment as it is now.

Below every step module, so the steps import it and never each other.
"""

from __future__ import annotations

from contextlib import contextmanager

from deployer.aws import eb, sdk_errors
from deployer.checklist.context import Context
from deployer.steps import StepError


@contextmanager
def plain_aws_errors():
    """An SDK error inside a step ends the step with the SDK's plain message."""
    try:
        yield
    except sdk_errors() as exc:
        raise StepError(str(exc)) from None


def live_environment(ctx: Context) -> dict | None:
    """The Elastic Beanstalk environment as it is now, or None."""
    s = ctx.settings
    with plain_aws_errors():
        return eb.find_environment(ctx.aws().client("elasticbeanstalk"), s.eb.application, s.eb.environment)
