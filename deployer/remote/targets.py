"""Which instances converge works on."""

from __future__ import annotations

from deployer.config import Settings


class NoTargets(Exception):
    """No host to converge; the message says how to name them."""


def environment_hosts(s: Settings, client=None) -> list[str]:
    """The addresses of the environment's running instances, found through AWS (read-only calls):
    EC2 instances tagged elasticbeanstalk:environment-name = eb.environment; private addresses when a
    bastion or ProxyCommand is configured, public ones otherwise. ``client``: an EC2 client whose calls
    the caller counts (the deploy's)."""
    from deployer.aws import Aws, ec2, sdk_errors

    try:
        client = client or Aws(profile=s.aws.profile or None, region=s.eb.region, read_only=True).client("ec2")
        found = ec2.environment_instances(client, s.eb.environment)
    except sdk_errors() as exc:
        raise NoTargets(f"could not list the instances of {s.eb.environment}: {exc}") from None
    through_bastion = bool(s.ssh.gateway or s.ssh.proxy_command)
    hosts = [addr for addr in (ec2.ssh_address(i, through_bastion) for i in found) if addr]
    if not hosts:
        raise NoTargets(f"no running instances of {s.eb.environment} in {s.eb.region}: deploy first (`inv deploy`), "
                        "or pass --hosts a,b,c")
    return hosts


def target_hosts(s: Settings, hosts: str | None = None) -> list[str]:
    """--hosts when given (comma-separated, user@host:port allowed), else the environment's instances."""
    explicit = [h.strip() for h in (hosts or "").split(",") if h.strip()]
    return explicit or environment_hosts(s)
