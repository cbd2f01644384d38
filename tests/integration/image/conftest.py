"""Image tests: a private dockerd, the local Debian base, a password-protected registry (tests/support).

The session-wide ones (docker_engine, localbase_image, app_image, registry) come from tests/integration/conftest.py,
shared with the deploy tests."""

from tests.support.git_server import git_server_factory  # noqa: F401
