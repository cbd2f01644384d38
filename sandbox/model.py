"""The Elastic Beanstalk state model: applications, application versions, environments, events, injected failures.

One ``EBState`` per account and region, kept on moto's own EB backend object, so ``POST /moto-api/reset`` (which
re-initialises every backend) forgets it with everything else. Handlers (sandbox/handlers.py) read and change it
under ``LOCK``; the lifecycle (sandbox/lifecycle.py) moves environments through their stages.
"""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.elasticbeanstalk.exceptions import InvalidParameterValueError
from moto.elasticbeanstalk.models import EBBackend

from sandbox.options import DEFAULT_OPTIONS, OptionKey

# One lock for the whole extension: moto's server answers requests on several threads.
LOCK = threading.RLock()


def now() -> datetime:
    return datetime.now(UTC)


def rand(n: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(random.choice(alphabet) for _ in range(n))


@dataclass
class Application:
    name: str
    arn: str
    description: str = ""
    created: datetime = field(default_factory=now)
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self, state: EBState) -> dict[str, Any]:
        return {
            "ApplicationArn": self.arn,
            "ApplicationName": self.name,
            "Description": self.description,
            "DateCreated": self.created,
            "DateUpdated": self.created,
            "Versions": [v.label for v in state.versions_of(self.name)],
            "ConfigurationTemplates": [],
        }


@dataclass
class AppVersion:
    application: str
    label: str
    arn: str
    bucket: str
    key: str
    description: str = ""
    status: str = "Unprocessed"
    created: datetime = field(default_factory=now)
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        out = {
            "ApplicationVersionArn": self.arn,
            "ApplicationName": self.application,
            "VersionLabel": self.label,
            "SourceBundle": {"S3Bucket": self.bucket, "S3Key": self.key},
            "DateCreated": self.created,
            "DateUpdated": self.created,
            "Status": self.status,
        }
        if self.description:
            out["Description"] = self.description
        return out


@dataclass
class Stage:
    """One step of a running operation: events to emit and state to set when a poll reaches it."""

    events: list[tuple[str, str]] = field(default_factory=list)  # (severity, message)
    action: Any = None  # callable(env) run before the events are emitted
    until: Any = None  # callable(env) -> bool: polls wait at this stage until it is true (work on the hosts)
    status: str | None = None
    health: str | None = None
    health_status: str | None = None


@dataclass
class Environment:
    id: str
    name: str
    application: str
    arn: str
    platform_arn: str
    solution_stack: str
    cname: str
    endpoint: str
    tier: dict[str, str]
    options: dict[OptionKey, str]
    description: str = ""
    version_label: str | None = None
    status: str = "Launching"
    health: str = "Grey"
    health_status: str = "Pending"
    created: datetime = field(default_factory=now)
    updated: datetime = field(default_factory=now)
    tags: dict[str, str] = field(default_factory=dict)
    instance_ids: list[str] = field(default_factory=list)
    security_group_id: str | None = None
    load_balancer: str = ""
    stages: list[Stage] = field(default_factory=list)
    request_id: str = ""
    polls: int = 0
    terminated_at: datetime | None = None
    # After Ready, health stays Grey/Pending for this many more polls, then turns to ``health_target``
    # (colour, status, causes) (EB-HEALTH-LAG).
    health_lag: int = 0
    health_target: tuple[str, str, list[str]] | None = None
    causes: list[str] = field(default_factory=list)
    # The settings in force while an update runs: DescribeConfigurationSettings shows them as "deployed"
    # next to the "pending" new ones (EB-OPTIONS-DRAFT).
    deployed_options: dict[OptionKey, str] | None = None
    # DisableIMDSv1 (and friends) move the environment to a launch template for good (EB-LAUNCH-TEMPLATE).
    launch_template: bool = False

    def option(self, namespace: str, name: str, resource: str = "") -> str:
        return self.options.get((resource, namespace, name), DEFAULT_OPTIONS.get((namespace, name), ""))

    @property
    def busy(self) -> bool:
        return bool(self.stages)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "EnvironmentName": self.name,
            "EnvironmentId": self.id,
            "ApplicationName": self.application,
            "SolutionStackName": self.solution_stack,
            "PlatformArn": self.platform_arn,
            "EndpointURL": self.endpoint,
            "CNAME": self.cname,
            "DateCreated": self.created,
            "DateUpdated": self.updated,
            "Status": self.status,
            "AbortableOperationInProgress": self.status == "Updating" and self.busy,
            "Health": self.health,
            "HealthStatus": self.health_status,
            "Tier": self.tier,
            "EnvironmentLinks": [],
            "EnvironmentArn": self.arn,
        }
        if self.version_label:
            out["VersionLabel"] = self.version_label
        if self.description:
            out["Description"] = self.description
        return out


@dataclass
class Event:
    date: datetime
    seq: int
    message: str
    severity: str
    application: str
    environment: str | None = None
    version_label: str | None = None
    request_id: str | None = None
    platform_arn: str | None = None

    def describe(self) -> dict[str, Any]:
        out = {"EventDate": self.date, "Message": self.message, "ApplicationName": self.application,
               "Severity": self.severity}
        for key, value in (("EnvironmentName", self.environment), ("VersionLabel", self.version_label),
                           ("RequestId", self.request_id), ("PlatformArn", self.platform_arn)):
            if value:
                out[key] = value
        return out


@dataclass
class HealthFault:
    """An injected health outcome: the next environment to become Ready turns Red/Severe with these causes."""

    environment: str | None
    causes: list[str]


@dataclass
class Failure:
    """An injected deployment failure, consumed by the next matching create/update."""

    environment: str | None
    message: str


SEVERITY_ORDER = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


class EBState:
    """Everything our extension keeps for one account and region."""

    def __init__(self, backend: EBBackend):
        self.account_id = backend.account_id
        self.region = backend.region_name
        self.applications: dict[str, Application] = {}
        self.versions: dict[tuple[str, str], AppVersion] = {}
        self.environments: list[Environment] = []
        self.events: list[Event] = []
        self.failures: list[Failure] = []
        self.polls_per_stage = 1
        # Polls health stays Grey/Pending after an operation reaches Ready (EB-HEALTH-LAG); control: health_lag_polls.
        self.health_lag_polls = 3
        self.health_faults: list[HealthFault] = []
        # Addresses given to launched instances as their public IP (control: instance_addresses), so a
        # test can point them at real SSH hosts; empty: moto's random addresses (nothing answers there).
        self.address_pool: list[str] = []
        self.pooled: set[str] = set()
        self._seq = 0
        self._last_event = datetime.fromtimestamp(0, UTC)

    # -- lookups ------------------------------------------------------------------------------------
    def arn(self, kind: str, path: str) -> str:
        return f"arn:aws:elasticbeanstalk:{self.region}:{self.account_id}:{kind}/{path}"

    def app(self, name: str) -> Application:
        if name not in self.applications:
            raise InvalidParameterValueError(f"No Application named '{name}' found.")
        return self.applications[name]

    def versions_of(self, application: str) -> list[AppVersion]:
        found = [v for (app, _), v in self.versions.items() if app == application]
        return sorted(found, key=lambda v: v.created, reverse=True)

    def live_environments(self) -> list[Environment]:
        return [e for e in self.environments if e.status != "Terminated"]

    def find_env(self, name: str | None = None, env_id: str | None = None) -> Environment:
        for env in self.live_environments():
            if (name and env.name == name) or (env_id and env.id == env_id):
                return env
        raise InvalidParameterValueError(f"No Environment found for EnvironmentName = '{name or env_id}'.")

    # -- events -------------------------------------------------------------------------------------
    def emit(self, env: Environment | None, severity: str, message: str, application: str | None = None,
             version_label: str | None = None) -> None:
        # Strictly increasing timestamps at millisecond resolution (what the API returns), so that
        # StartTime filtering and newest-first ordering are unambiguous.
        moment = now()
        date = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if date <= self._last_event:
            date = self._last_event + timedelta(milliseconds=1)
        self._last_event = date
        self._seq += 1
        self.events.append(Event(
            date=date, seq=self._seq, message=message, severity=severity,
            application=application or (env.application if env else ""),
            environment=env.name if env else None,
            version_label=version_label or (env.version_label if env else None),
            request_id=env.request_id if env else None,
            platform_arn=env.platform_arn if env else None,
        ))

    # -- injected failures ------------------------------------------------------------------------
    def take_failure(self, env_name: str) -> Failure | None:
        return _take(self.failures, env_name)

    def take_health_fault(self, env_name: str) -> HealthFault | None:
        return _take(self.health_faults, env_name)


def _take(pending: list[Any], env_name: str) -> Any:
    """Remove and return the first injection meant for ``env_name`` (or for any environment)."""
    for i, item in enumerate(pending):
        if item.environment in (None, env_name):
            return pending.pop(i)
    return None


def state_of(backend: EBBackend) -> EBState:
    """The extension's state for one moto EB backend (one account and region), created on first use."""
    # Stored on moto's backend object: moto's reset replaces that object's __dict__, wiping this too.
    with LOCK:
        state = backend.__dict__.get("_sandbox_eb")
        if state is None:
            state = backend.__dict__["_sandbox_eb"] = EBState(backend)
        return state
