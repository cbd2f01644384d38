"""The session's password-protected registry (sandbox/registry.py), for the tests that push images."""

from __future__ import annotations

import pytest

from sandbox.registry import running_registry


@pytest.fixture(scope="session")
def registry():
    """The session's registry, shared by the tests that do not count what a push adds."""
    with running_registry() as reg:
        yield reg
