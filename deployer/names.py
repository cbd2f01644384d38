"""The names of the AWS resources the deployer creates, and their tags, built in one place.

The settings name the ECR repository, the Elastic Beanstalk application and environment and the instance
profile. Everything else is named ``{project}-{environment}-…`` (or ``/{project}/{environment}/…`` in SSM), so
two environments of one project never share a file system, security group, database or secret.
"""

from __future__ import annotations

from deployer.config import Settings


def _prefix(s: Settings) -> str:
    return f"{s.project.name}-{s.eb.environment}"


def efs_creation_token(s: Settings) -> str:
    """The notebook file system's creation token (also its Name tag)."""
    return f"{_prefix(s)}-notebooks"


def instances_security_group(s: Settings) -> str:
    """Our security group on the EB instances: EFS and RDS admit traffic only from it."""
    return f"{_prefix(s)}-instances"


def efs_security_group(s: Settings) -> str:
    """The security group on the file system's mount targets."""
    return f"{_prefix(s)}-efs"


def database_identifier(s: Settings) -> str:
    """The managed database's RDS identifier; its security group has the same name."""
    return f"{_prefix(s)}-db"


def cname_prefix(s: Settings) -> str:
    """The CNAME prefix a new environment is created with: eb.cname_prefix, else "{project}-{environment}"
    (lowercase, at most 63 characters, as CheckDNSAvailability accepts)."""
    return s.eb.cname_prefix or _prefix(s).lower()[:63].rstrip("-")


def load_balancer_security_group(s: Settings) -> str:
    """Our security group on the load balancer: the listener ports from anywhere; the instances admit it."""
    return f"{_prefix(s)}-lb"


def secret_parameters_path(s: Settings) -> str:
    """The SSM path under which every secret parameter of the environment lives (the instance role may read
    only below it)."""
    return f"/{s.project.name}/{s.eb.environment}"


def secret_parameter(s: Settings, variable: str) -> str:
    """The SSM parameter holding the container variable ``variable``."""
    return f"{secret_parameters_path(s)}/{variable}"


def bundle_key(s: Settings, version_label: str) -> str:
    """Where an application version's bundle goes in Elastic Beanstalk's storage bucket."""
    return f"{s.eb.application}/{version_label}.zip"


def tags(s: Settings) -> dict[str, str]:
    """The tags on everything the deploy creates."""
    return {"project": s.project.name, "sifu:environment": s.eb.environment}
