# One SSH test bed per session, shared by the remote (converge) and deploy tests: two beds would share
# the namespace prefix and tear each other down.
from tests.support.hosts import remote_bed  # noqa: F401
