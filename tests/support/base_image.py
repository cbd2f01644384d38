"""The tests' local Debian base image (sandbox/base_image.py), imported into the session's engine."""

from __future__ import annotations

import pytest

# The tests and benches use these names through this module.
from sandbox.base_image import IMAGE, import_base, rootfs_tarball  # noqa: F401


@pytest.fixture(scope="session")
def localbase_image(docker_client) -> str:
    """`localbase:bookworm` in the session's engine: the stand-in for the official slim Python image."""
    import_base(docker_client)
    return IMAGE
