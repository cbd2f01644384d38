# Session-wide real parts shared by several test directories: one instance each per session (a fixture
# imported into two conftests would start twice; two SSH beds would share the namespace prefix and tear
# each other down; two private dockerds would double the build work).
from tests.support.app_image import app_image  # noqa: F401
from tests.support.base_image import localbase_image  # noqa: F401
from tests.support.docker_engine import docker_client, docker_engine  # noqa: F401
from tests.support.hosts import remote_bed  # noqa: F401
from tests.support.registry import registry  # noqa: F401
