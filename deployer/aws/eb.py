"""Elastic Beanstalk: application, versions, environment, and waiting while streaming events (steps 8, 9, 14)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from deployer.aws import AwsError

DOCKER_AL2023_BRANCH = "Docker running on 64bit Amazon Linux 2023"
FAILED_SEVERITIES = ("ERROR", "FATAL")

Option = tuple[str, str]  # (namespace, option name)


def storage_bucket(region: str, account: str) -> str:
    """The bucket EB uses for an account and region (what create_storage_location returns)."""
    return f"elasticbeanstalk-{region}-{account}"


def option_settings(options: dict[Option, str]) -> list[dict[str, str]]:
    """The API's OptionSettings list from {(namespace, name): value}, in a stable order."""
    return [{"Namespace": ns, "OptionName": name, "Value": value} for (ns, name), value in sorted(options.items())]


# Options whose described value also lists what EB added itself (its own instance security group).
LIST_OPTIONS = {("aws:autoscaling:launchconfiguration", "SecurityGroups")}


def option_changes(current: dict[Option, str], desired: dict[Option, str]) -> dict[Option, str]:
    """The desired settings whose value differs from the current one (pure)."""
    def same(key: Option, value: str) -> bool:
        if key in LIST_OPTIONS:
            wanted = {v.strip() for v in value.split(",") if v.strip()}
            return wanted <= {v.strip() for v in current.get(key, "").split(",") if v.strip()}
        return current.get(key) == value

    return {key: value for key, value in desired.items() if not same(key, value)}


# -- check -------------------------------------------------------------------------------------------

def find_application(client: Any, name: str) -> dict[str, Any] | None:
    found = client.describe_applications(ApplicationNames=[name])["Applications"]
    return found[0] if found else None


def list_applications(client: Any) -> list[str]:
    return sorted(a["ApplicationName"] for a in client.describe_applications()["Applications"])


def find_environment(client: Any, application: str, name: str) -> dict[str, Any] | None:
    """The live (not terminated) environment called ``name``, or None."""
    found = client.describe_environments(ApplicationName=application, EnvironmentNames=[name],
                                         IncludeDeleted=False)["Environments"]
    live = [e for e in found if e["Status"] not in ("Terminated",)]
    return live[0] if live else None


def list_environments(client: Any, application: str) -> list[dict[str, Any]]:
    return client.describe_environments(ApplicationName=application, IncludeDeleted=False)["Environments"]


def find_application_version(client: Any, application: str, label: str) -> dict[str, Any] | None:
    found = client.describe_application_versions(ApplicationName=application,
                                                 VersionLabels=[label])["ApplicationVersions"]
    return found[0] if found else None


def version_labels(client: Any, application: str) -> list[str]:
    """The application's version labels, newest first."""
    versions = client.describe_application_versions(ApplicationName=application)["ApplicationVersions"]
    return [v["VersionLabel"] for v in sorted(versions, key=lambda v: v["DateCreated"], reverse=True)]


def docker_platform_arn(client: Any, version: str | None = None) -> str:
    """The Docker on Amazon Linux 2023 platform: ``version`` if given, else the recommended (or newest) one."""
    filters = [{"Type": "PlatformBranchName", "Operator": "=", "Values": [DOCKER_AL2023_BRANCH]}]
    if version:
        filters.append({"Type": "PlatformVersion", "Operator": "=", "Values": [version]})
    pages = client.get_paginator("list_platform_versions").paginate(Filters=filters)
    found = [summary for page in pages for summary in page["PlatformSummaryList"]]
    if not found:
        raise AwsError(f"no '{DOCKER_AL2023_BRANCH}' platform{' ' + version if version else ''} in this region; "
                       "list them with `aws elasticbeanstalk list-platform-versions`")
    # The API reference spells the state "recommended"; compare without case.
    recommended = [p for p in found if (p.get("PlatformLifecycleState") or "").lower() == "recommended"]
    pick = recommended or sorted(found, key=lambda p: [int(x) for x in p["PlatformVersion"].split(".")
                                                       if x.isdigit()])
    return pick[-1]["PlatformArn"]


def current_options(client: Any, application: str, environment: str) -> dict[Option, str]:
    """The environment's effective option settings as {(namespace, name): value}.

    While an update runs EB describes a "pending" draft next to the "deployed" settings: take the deployed ones.
    Options of the auto scaling group and launch template carry a ResourceName; they are the same options, so
    the name is ignored (an entry without one wins if both appear)."""
    described = client.describe_configuration_settings(ApplicationName=application,
                                                       EnvironmentName=environment)["ConfigurationSettings"]
    settings = next((d for d in described if d.get("DeploymentStatus") == "deployed"), described[0])
    options = sorted(settings["OptionSettings"], key=lambda o: not o.get("ResourceName"))
    return {(o["Namespace"], o["OptionName"]): o.get("Value", "") for o in options}


def environment_health(client: Any, environment: str) -> dict[str, Any]:
    """Enhanced health with its causes and instance counts (without AttributeNames EB returns only the name)."""
    return client.describe_environment_health(EnvironmentName=environment, AttributeNames=["All"])


def cname_availability(client: Any, prefix: str) -> tuple[bool, str]:
    """(free?, the FullyQualifiedCNAME CreateEnvironment reserves for ``prefix``)."""
    found = client.check_dns_availability(CNAMEPrefix=prefix)
    return bool(found["Available"]), found.get("FullyQualifiedCNAME", "")


def instance_ids(client: Any, environment: str) -> list[str]:
    resources = client.describe_environment_resources(EnvironmentName=environment)["EnvironmentResources"]
    return [i["Id"] for i in resources["Instances"]]


def latest_event_time(client: Any, environment: str) -> datetime | None:
    """When the newest event of ``environment`` happened: a ``since`` for waiting that needs no clock sync."""
    found = client.describe_events(EnvironmentName=environment, MaxRecords=1)["Events"]
    return found[0]["EventDate"] if found else None


def events_since(client: Any, environment: str, start: datetime) -> list[dict[str, Any]]:
    """Events for ``environment`` on or after ``start``, oldest first."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"EnvironmentName": environment, "StartTime": start}
    while True:
        page = client.describe_events(**kwargs)
        events.extend(page["Events"])
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return list(reversed(events))


# -- apply -------------------------------------------------------------------------------------------

def create_storage_location(client: Any) -> str:
    return client.create_storage_location()["S3Bucket"]


def create_application(client: Any, name: str, description: str = "", tags: dict[str, str] | None = None) -> None:
    client.create_application(ApplicationName=name, Description=description,
                              Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])


def create_application_version(client: Any, application: str, label: str, bucket: str, key: str,
                               description: str = "") -> dict[str, Any]:
    return client.create_application_version(
        ApplicationName=application, VersionLabel=label, Description=description,
        SourceBundle={"S3Bucket": bucket, "S3Key": key}, Process=False)["ApplicationVersion"]


def create_environment(client: Any, application: str, name: str, platform_arn: str, version_label: str,
                       options: dict[Option, str], cname_prefix: str = "",
                       tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Start creating the environment; returns the description including the request id to wait on."""
    kwargs: dict[str, Any] = {
        "ApplicationName": application, "EnvironmentName": name, "PlatformArn": platform_arn,
        "VersionLabel": version_label, "OptionSettings": option_settings(options),
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }
    if cname_prefix:
        kwargs["CNAMEPrefix"] = cname_prefix
    return client.create_environment(**kwargs)


def update_environment(client: Any, name: str, version_label: str | None = None,
                       options: dict[Option, str] | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"EnvironmentName": name}
    if version_label:
        kwargs["VersionLabel"] = version_label
    if options:
        kwargs["OptionSettings"] = option_settings(options)
    return client.update_environment(**kwargs)


def terminate_environment(client: Any, name: str) -> dict[str, Any]:
    return client.terminate_environment(EnvironmentName=name)


def delete_application(client: Any, name: str) -> None:
    client.delete_application(ApplicationName=name)


# -- wait --------------------------------------------------------------------------------------------

class EnvironmentFailed(AwsError):
    """EB reported errors (or rolled back) while we waited; ``errors`` holds EB's own messages."""

    def __init__(self, message: str, errors: list[dict[str, Any]], environment: dict[str, Any] | None):
        self.errors = errors
        self.environment = environment
        lines = [message] + [f"  {e['EventDate']:%H:%M:%S} {e['Severity']} {e['Message']}" for e in errors]
        super().__init__("\n".join(lines))


class WaitTimeout(AwsError):
    """The environment did not settle in time; it may still be working."""


@dataclass
class WaitResult:
    environment: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    waited_seconds: float = 0.0  # time spent sleeping, excluded from "the tool's own time"


def wait_for_environment(
    client: Any,
    environment: str,
    since: datetime,
    on_event: Callable[[dict[str, Any]], None] = lambda event: None,
    *,
    until: tuple[str, ...] = ("Ready",),
    expect_version: str | None = None,
    request_id: str | None = None,
    timeout: float = 1800.0,
    health_grace: float = 600.0,
    interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> WaitResult:
    """Poll EB events after ``since`` (exclusive; streaming each new one to ``on_event``) until the environment's status
    is in ``until``. Then require no ERROR/FATAL events and the ``expect_version`` label, and, for Ready, wait up to
    ``health_grace`` seconds for Green: EB turns health Green some time after Ready, not with it.

    Raises EnvironmentFailed (with EB's error events, or the health causes) or WaitTimeout. ``sleep`` and
    ``clock`` are injectable.
    """
    seen: set[tuple[Any, ...]] = set()
    streamed: list[dict[str, Any]] = []
    start = clock()
    waited = 0.0
    polls = 0

    def pull() -> None:
        for event in events_since(client, environment, since):
            if event["EventDate"] <= since:  # StartTime is inclusive; ``since`` itself is not ours
                continue
            if request_id and event.get("RequestId") not in (None, request_id):
                continue
            key = (event["EventDate"], event["Message"], event.get("RequestId"))
            if key in seen:
                continue
            seen.add(key)
            streamed.append(event)
            on_event(event)

    def describe() -> dict[str, Any] | None:
        nonlocal polls
        polls += 1
        pull()
        found = client.describe_environments(EnvironmentNames=[environment])["Environments"]
        return found[0] if found else None

    def pause() -> None:
        nonlocal waited
        sleep(interval)
        waited += interval

    while True:
        env = describe()
        if env and env["Status"] in until:
            pull()  # events written in the same instant as the final status
            break
        if clock() - start >= timeout:
            state = f"still {env['Status']}" if env else "not found"
            raise WaitTimeout(f"gave up waiting for {environment} after {timeout:.0f} s ({state}); it may still be "
                              f"working: watch it with `inv status` or `eb events`, then run the deploy again")
        pause()

    errors = [e for e in streamed if e["Severity"] in FAILED_SEVERITIES]
    if errors:
        raise EnvironmentFailed(f"Elastic Beanstalk reported errors for {environment}:", errors, env)
    if "Ready" in until:
        if expect_version and env.get("VersionLabel") != expect_version:
            raise EnvironmentFailed(f"{environment} runs version {env.get('VersionLabel')!r}, not "
                                    f"{expect_version!r}: the deployment was rolled back", [], env)
        ready_at = clock()
        while env.get("Health") != "Green":
            if env.get("Health") == "Red" or clock() - ready_at >= health_grace:
                raise _unhealthy(client, environment, env, health_grace)
            pause()
            env = describe() or env
    return WaitResult(environment=env, events=streamed, polls=polls, waited_seconds=waited)


def _unhealthy(client: Any, environment: str, env: dict[str, Any], grace: float) -> EnvironmentFailed:
    """Red, or not Green within the grace period: EB's causes and how many instances are in which state."""
    health = environment_health(client, environment)
    counts = ", ".join(f"{n} {state}" for state, n in (health.get("InstancesHealth") or {}).items() if n)
    causes = "; ".join(health.get("Causes") or []) or "EB gives no cause"
    why = "turned Red" if env.get("Health") == "Red" else f"did not turn Green within {grace:.0f} s (eb.health_grace)"
    return EnvironmentFailed(f"{environment} is Ready but {why}: health {env.get('Health')} "
                             f"({health.get('HealthStatus', env.get('HealthStatus'))}); causes: {causes}; "
                             f"instances: {counts or 'none'}. See `inv status` and `inv logs`", [], env)
