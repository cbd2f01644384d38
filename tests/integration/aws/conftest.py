"""Integration tests against the emulated AWS (moto server + faithful Elastic Beanstalk)."""

from tests.support.aws import aws, moto_server  # noqa: F401  (fixtures)
