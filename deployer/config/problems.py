"""What is wrong with a configuration, and how it is reported: every problem at once, secrets redacted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr, ValidationError

from deployer.config.schema import SECRET_PATHS, Settings

REDACTED = "********"


class ConfigError(Exception):
    """One or more settings are wrong; nothing has been changed."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = [f"configuration has {len(problems)} problem(s); nothing was changed:"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    value: str | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = self.path
        if self.value is not None:
            where += f" = {self.value}"
        if self.source:
            where += f" (from {self.source})"
        return f"{where}: {self.message}"


def display_value(path: str, value: Any) -> str:
    if path in SECRET_PATHS:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return REDACTED if raw else '""'
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, str):
        return repr(value) if value == "" or value != value.strip() else value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def pydantic_problems(error: ValidationError, merged: dict, sources: dict[str, str], defaults: dict[str, Any]) -> list[Problem]:
    """One Problem per pydantic error, worded for an operator; defaults (by key path) give the type hints."""
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        path = ".".join(p for p in loc if not p.isdigit())
        full = ".".join(loc)
        raw: Any = merged
        for part in item["loc"]:
            try:
                raw = raw[part]
            except (KeyError, IndexError, TypeError):
                raw = None
                break
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "literal_error":
            message = message.replace("Input should be", "must be one of")
        elif item["type"].endswith("_parsing") or item["type"].endswith("_type"):
            message = message.replace("Input should be", "must be") + f"; {_type_hint(defaults.get(path))}"
        elif item["type"] in ("greater_than_equal", "less_than_equal"):
            message = message.replace("Input should be", "must be")
        elif item["type"] == "missing":
            message = "is required; add it to your overrides"
        problems.append(Problem(full, message, display_value(path, raw) if raw is not None else None, sources.get(path, "defaults")))
    return problems


def _type_hint(default: Any) -> str:
    if isinstance(default, bool):
        return "write true or false"
    if isinstance(default, int):
        return f"write a whole number such as {default}"
    if isinstance(default, list):
        return "write a list, e.g. [a, b] (or comma-separated in an environment variable)"
    return "write a quoted string"


def cross_checks(s: Settings, sources: dict[str, str]) -> list[Problem]:
    """Rules that involve more than one setting."""
    problems = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(path, message, display_value(path, s.get(path)), sources.get(path, "defaults")))

    if s.storage.kind == "efs" and s.efs.region != s.eb.region:
        add("efs.region", f"must equal eb.region ({s.eb.region}): instances mount EFS only in their own region")
    if s.efs.availability_zone and not s.efs.availability_zone.startswith(s.efs.region):
        add("efs.availability_zone", f"must be a zone of efs.region ({s.efs.region})")
    if s.ports.sifu == s.ports.jupyter:
        add("ports.jupyter", "must differ from ports.sifu; Sifu and Jupyter each need their own port")
    if s.ports.peer in (s.ports.sifu, s.ports.jupyter):
        add("ports.peer", "must differ from ports.sifu and ports.jupyter; the instances pass Jupyter requests "
                          "to each other on a port of its own")
    for name in ("sifu", "jupyter", "peer"):
        if getattr(s.ports, name) in (80, 443):
            add(f"ports.{name}", "must not be 80 or 443; those belong to the load balancer")
    if s.eb.min_instances > s.eb.max_instances:
        add("eb.min_instances", f"must not exceed eb.max_instances ({s.eb.max_instances})")
    if s.storage.kind == "s3" and not s.storage.s3_bucket:
        add("storage.s3_bucket", "is required when storage.kind is s3; name the bucket")
    if s.rds.mode != "none" and not s.rds.password.get_secret_value():
        add("rds.password", f"is required when rds.mode is {s.rds.mode}; set RDS_PASSWORD or rds.password")
    if s.rds.mode == "external" and not s.rds.host:
        add("rds.host", "is required when rds.mode is external; give the database host")
    if s.sifu.source == "git" and not s.sifu.git_url:
        add("sifu.git_url", "is required when sifu.source is git; give the https URL of the private repository")
    if s.eb.max_instances > 1 and s.rds.mode == "none":
        add("eb.max_instances", "above 1 needs a shared database (rds.mode managed or external): with rds.mode none "
            "each instance keeps its own SQLite, so a token issued by one instance is unknown to the next; set "
            "rds.mode or eb.max_instances: 1")
    if s.web.https and not s.eb.certificate_arn:
        add("web.https", "needs eb.certificate_arn: the load balancer's listeners serve https only with an ACM "
            "certificate; set eb.certificate_arn, or web.https: false")
    if s.eb.certificate_arn and not s.web.https:
        add("eb.certificate_arn", "makes the listeners https, so web.https must be true (otherwise URLs and cookies "
            "say http); set web.https: true, or empty eb.certificate_arn")
    return problems


# Settings that may be empty for `inv render` and a local run but not for a deploy: without them the
# deployed Sifu cannot log anyone in.
DEPLOY_REQUIRED = ("edx.hostname", "edx.oauth2_client_id", "edx.oauth2_redirect_uri")
