from tests.support.aws import aws, moto_server  # noqa: F401
from tests.support.deploy_bed import deploy_site  # noqa: F401
from tests.support.sifu_stack import sifu_stack  # noqa: F401
