"""The Elastic Beanstalk platform catalogue: platform versions, solution stacks and ListPlatformVersions filters.

A fixed catalogue (Docker on Amazon Linux 2023 in three versions, one Recommended; a deprecated AL2 branch; a
Python branch), enough for the deploy to pick "the recommended Docker on AL2023" the way it does in AWS
(EB-PLATFORM-FILTERS). Real AWS publishes new versions over time; this list does not change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moto.elasticbeanstalk.exceptions import InvalidParameterValueError

# (branch, version, os name, os version, lifecycle, branch lifecycle, language)
_PLATFORMS = [
    ("Docker running on 64bit Amazon Linux 2023", "4.4.3", "Amazon Linux", "2023", None, "Supported", "Docker"),
    ("Docker running on 64bit Amazon Linux 2023", "4.5.2", "Amazon Linux", "2023", None, "Supported", "Docker"),
    ("Docker running on 64bit Amazon Linux 2023", "4.6.0", "Amazon Linux", "2023", "Recommended", "Supported",
     "Docker"),
    ("Docker running on 64bit Amazon Linux 2", "4.2.0", "Amazon Linux", "2", "Recommended", "Deprecated", "Docker"),
    ("Python 3.12 running on 64bit Amazon Linux 2023", "4.6.0", "Amazon Linux", "2023", "Recommended",
     "Supported", "Python"),
]
_PLATFORM_DATE = datetime(2025, 7, 1, tzinfo=UTC)


def solution_stack(branch: str, version: str) -> str:
    # "Docker running on 64bit Amazon Linux 2023" + 4.6.0 -> "64bit Amazon Linux 2023 v4.6.0 running Docker"
    what, _, os_part = branch.partition(" running on ")
    return f"{os_part} v{version} running {what}"


def platforms(region: str) -> list[dict[str, Any]]:
    """PlatformSummary entries, as ListPlatformVersions returns them, for ``region``."""
    out = []
    for branch, version, os_name, os_version, lifecycle, branch_lifecycle, language in _PLATFORMS:
        summary = {
            "PlatformArn": f"arn:aws:elasticbeanstalk:{region}::platform/{branch}/{version}",
            "PlatformOwner": "AWSElasticBeanstalk",
            "PlatformStatus": "Ready",
            "PlatformCategory": language,
            "OperatingSystemName": os_name,
            "OperatingSystemVersion": os_version,
            "SupportedTierList": ["WebServer/Standard", "Worker/SQS/HTTP"],
            "SupportedAddonList": ["Log/S3", "Monitoring/Healthd", "WorkerDaemon/SQSD"],
            "PlatformVersion": version,
            "PlatformBranchName": branch,
            "PlatformBranchLifecycleState": branch_lifecycle,
        }
        if lifecycle:
            summary["PlatformLifecycleState"] = lifecycle
        out.append(summary)
    return out


def platform_description(summary: dict[str, Any]) -> dict[str, Any]:
    """The PlatformDescription (DescribePlatformVersion) of one catalogue entry."""
    branch, version = summary["PlatformBranchName"], summary["PlatformVersion"]
    return {
        **summary,
        "PlatformName": branch,
        "SolutionStackName": solution_stack(branch, version),
        "DateCreated": _PLATFORM_DATE,
        "DateUpdated": _PLATFORM_DATE,
        "Description": f"{branch} platform version {version}",
        "Maintainer": "<elasticbeanstalk-platforms@amazon.com>",
        "ProgrammingLanguages": [{"Name": summary["PlatformCategory"], "Version": ""}],
        "Frameworks": [],
        "CustomAmiList": [{"VirtualizationType": "hvm", "ImageId": "ami-0ebeanstalk0al2023"}],
    }


def resolve(region: str, arn: str | None, stack: str | None) -> tuple[str, str]:
    """(platform ARN, solution stack name) named by exactly one of ``arn`` and ``stack``, as CreateEnvironment
    and UpdateEnvironment accept them."""
    if arn and stack:
        raise InvalidParameterValueError("You can't specify both PlatformArn and SolutionStackName.")
    for summary in platforms(region):
        description = platform_description(summary)
        if (arn and description["PlatformArn"] == arn) or (stack and description["SolutionStackName"] == stack):
            return description["PlatformArn"], description["SolutionStackName"]
    if arn:
        raise InvalidParameterValueError(f"No Platform named '{arn}' found.")
    if stack:
        raise InvalidParameterValueError(f"No Solution Stack named '{stack}' found.")
    raise InvalidParameterValueError("You must specify either PlatformArn or SolutionStackName.")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


_FIELD_BY_FILTER_TYPE = {
    "PlatformName": "PlatformBranchName",  # AWS compares the platform name, which equals the branch name
    "PlatformVersion": "PlatformVersion",
    "PlatformStatus": "PlatformStatus",
    "PlatformBranchName": "PlatformBranchName",
    "PlatformLifecycleState": "PlatformLifecycleState",
    "PlatformOwner": "PlatformOwner",
    "SupportedTier": "SupportedTierList",
    "SupportedAddon": "SupportedAddonList",
    "ProgrammingLanguageName": "PlatformCategory",
    "OperatingSystemName": "OperatingSystemName",
}


def matches_filter(summary: dict[str, Any], flt: dict[str, Any]) -> bool:
    """Whether a PlatformSummary passes one ListPlatformVersions filter (Type, Operator, Values)."""
    kind, op, values = flt.get("Type"), flt.get("Operator", "="), flt.get("Values") or []
    if kind not in _FIELD_BY_FILTER_TYPE:
        raise InvalidParameterValueError(f"Invalid filter type: {kind}")
    actual = summary.get(_FIELD_BY_FILTER_TYPE[kind])
    actuals = actual if isinstance(actual, list) else [actual]
    actuals = [a for a in actuals if a is not None]

    def one(a: str, v: str) -> bool:
        if op == "=":
            return a == v
        if op == "!=":
            return a != v
        if op == "contains":
            return v in a
        if op == "begins_with":
            return a.startswith(v)
        if op == "ends_with":
            return a.endswith(v)
        if op in ("<", "<=", ">", ">=") and kind == "PlatformVersion":
            left, right = _version_key(a), _version_key(v)
            return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
        raise InvalidParameterValueError(f"Invalid filter operator {op} for type {kind}")

    if op == "!=":
        return all(one(a, v) for a in actuals for v in values) if actuals else True
    return any(one(a, v) for a in actuals for v in values)
