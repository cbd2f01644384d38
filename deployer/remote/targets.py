"""Which instances converge works on."""

from __future__ import annotations

from deployer.config import Settings


class NoTargets(Exception):
    """No host to converge; the message says how to name them."""


def environment_hosts(s: Settings) -> list[str]:
    """The addresses of the environment's running instances.

    Seam for the deploy work: find the EC2 instances tagged
    elasticbeanstalk:environment-name = s.eb.environment (private IPs, or public ones when the
    operator is outside the VPC) through deployer/aws. Until that is wired in, hosts are explicit.
    """
    raise NoTargets("no hosts given: pass --hosts a,b,c (finding the environment's instances through AWS is not wired in yet)")


def target_hosts(s: Settings, hosts: str | None = None) -> list[str]:
    """--hosts when given (comma-separated, user@host:port allowed), else the environment's instances."""
    explicit = [h.strip() for h in (hosts or "").split(",") if h.strip()]
    return explicit or environment_hosts(s)
