"""End-to-end: the built image on the test engine, real nginx, devlms, Chromium (tests/support/e2e_stack.py)."""

from tests.support.app_image import app_image  # noqa: F401
from tests.support.base_image import localbase_image  # noqa: F401
from tests.support.docker_engine import docker_client, docker_engine  # noqa: F401
from tests.support.e2e_stack import e2e_stack  # noqa: F401
