from tests.support.hosts import remote_bed  # noqa: F401
