"""Choosing the version a rollback returns to (the rest of deployer/environment.py runs in
tests/integration/aws/test_cli_aws.py)."""

from pathlib import Path

import pytest

from deployer import environment
from deployer.config import load

LABELS = ["v3", "v2", "v1"]  # newest first


@pytest.fixture
def settings():
    return load(environ={}, answers_file=Path("/nonexistent")).settings


def test_the_default_target_is_the_version_before_the_current_one(settings):
    assert environment.rollback_target(settings, LABELS, "v3", None) == "v2"
    assert environment.rollback_target(settings, LABELS, "v2", None) == "v1"


def test_a_named_target_must_exist(settings):
    assert environment.rollback_target(settings, LABELS, "v3", "v1") == "v1"
    with pytest.raises(environment.OperationError, match="no version 'v9'.*known: v3, v2, v1"):
        environment.rollback_target(settings, LABELS, "v3", "v9")


def test_no_earlier_version_is_an_error(settings):
    with pytest.raises(environment.OperationError, match="no earlier version"):
        environment.rollback_target(settings, LABELS, "v1", None)
    with pytest.raises(environment.OperationError, match="no earlier version"):
        environment.rollback_target(settings, LABELS, "unknown", None)
