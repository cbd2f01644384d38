"""Image tests: a private dockerd, the local Debian base, a password-protected registry (tests/support)."""

from tests.support.app_image import app_image  # noqa: F401
from tests.support.base_image import localbase_image  # noqa: F401
from tests.support.docker_engine import docker_client, docker_engine  # noqa: F401
from tests.support.registry import registry  # noqa: F401
from tests.support.git_server import git_server_factory  # noqa: F401,E402
