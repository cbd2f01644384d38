"""Image tests: a private dockerd, the local Debian base, a password-protected registry (tests/support).

The session-wide ones (docker_engine, localbase_image, app_image, registry) come from tests/integration/conftest.py,
shared with the deploy tests."""

from tests.support.git_server import git_server_factory  # noqa: F401

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.registry import start_registry, stop_registry


@pytest.fixture(scope="module")
def registry():
    """An empty registry per module: these tests count the bytes and tags a push adds, so they must
    not see what the deploy tests pushed to the session's shared registry."""
    root = Path(tempfile.mkdtemp(prefix="sifu-registry-image-"))
    reg = start_registry(root)
    try:
        yield reg
    finally:
        stop_registry(reg)
        shutil.rmtree(root, ignore_errors=True)
