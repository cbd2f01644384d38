"""Image tests: a private dockerd, the local Debian base, a password-protected registry (sandbox/registry.py).

The session-wide ones (docker_engine, localbase_image, app_image) come from tests/integration/conftest.py,
shared with the deploy tests."""

import pytest

from tests.support.git_server import git_server_factory  # noqa: F401
from sandbox.registry import running_registry


@pytest.fixture(scope="module")
def registry():
    """An empty registry per module: these tests count the bytes and tags a push adds, so they must
    not see what the deploy tests pushed to the session's shared registry."""
    with running_registry("sifu-registry-image-") as reg:
        yield reg
