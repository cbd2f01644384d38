"""Elastic Beanstalk for moto's server, made faithful enough to deploy against.

moto 5.2 ships a thin Elastic Beanstalk (see MACHINE.md "AWS: moto"). This module adds what a deploy needs,
as snake_case methods on ``moto.elasticbeanstalk.responses.EBResponse`` that return ``ActionResult``; moto
serialises them through botocore's own response shapes, so real boto3 clients and the AWS CLI parse them.

What it models:
- application versions whose source bundle must exist in moto's S3; the EB storage bucket;
- platform versions (Docker on Amazon Linux 2023 and a few others) and solution stacks;
- environments that honour OptionSettings, CNAMEPrefix, VersionLabel and the describe filters;
- an honest lifecycle driven by *polls*, not wall time: every describe call that covers an environment
  advances its running operation by one stage (Launching -> Ready, Updating -> Ready, Terminating ->
  Terminated), emitting the events AWS would emit, health Grey -> Green;
- instances launched in moto's EC2 (tagged ``elasticbeanstalk:environment-name``) inside a security group
  created for the environment, replaced when the instance type/key/profile/size changes, terminated on
  terminate;
- injected failures (see ``control``): the next deployment fails with ERROR events and, for an
  update, rolls back to the previous version label.

All state lives on moto's EB backend object, so ``POST /moto-api/reset`` wipes it with everything else.
``install()`` must run in the process that serves moto (see tests/support/moto_eb_server.py).
"""

from __future__ import annotations

import json
import random
import string
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.elasticbeanstalk.exceptions import InvalidParameterValueError
from moto.elasticbeanstalk.models import EBBackend, eb_backends
from moto.elasticbeanstalk.responses import EBResponse

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"

_lock = threading.RLock()


# --------------------------------------------------------------------------------------------------
# Platforms

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


def _solution_stack(branch: str, version: str) -> str:
    # "Docker running on 64bit Amazon Linux 2023" + 4.6.0 -> "64bit Amazon Linux 2023 v4.6.0 running Docker"
    what, _, os_part = branch.partition(" running on ")
    return f"{os_part} v{version} running {what}"


def _platforms(region: str) -> list[dict[str, Any]]:
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


def _platform_description(summary: dict[str, Any]) -> dict[str, Any]:
    branch, version = summary["PlatformBranchName"], summary["PlatformVersion"]
    return {
        **summary,
        "PlatformName": branch,
        "SolutionStackName": _solution_stack(branch, version),
        "DateCreated": _PLATFORM_DATE,
        "DateUpdated": _PLATFORM_DATE,
        "Description": f"{branch} platform version {version}",
        "Maintainer": "<elasticbeanstalk-platforms@amazon.com>",
        "ProgrammingLanguages": [{"Name": summary["PlatformCategory"], "Version": ""}],
        "Frameworks": [],
        "CustomAmiList": [{"VirtualizationType": "hvm", "ImageId": "ami-0ebeanstalk0al2023"}],
    }


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def _matches_filter(summary: dict[str, Any], flt: dict[str, Any]) -> bool:
    field_by_type = {
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
    kind, op, values = flt.get("Type"), flt.get("Operator", "="), flt.get("Values") or []
    if kind not in field_by_type:
        raise InvalidParameterValueError(f"Invalid filter type: {kind}")
    actual = summary.get(field_by_type[kind])
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


# --------------------------------------------------------------------------------------------------
# Option settings

_DEFAULT_OPTIONS: dict[tuple[str, str], str] = {
    ("aws:autoscaling:asg", "MinSize"): "1",
    ("aws:autoscaling:asg", "MaxSize"): "4",
    ("aws:autoscaling:launchconfiguration", "InstanceType"): "t3.micro",
    ("aws:autoscaling:launchconfiguration", "IamInstanceProfile"): "",
    ("aws:autoscaling:launchconfiguration", "EC2KeyName"): "",
    ("aws:ec2:instances", "InstanceTypes"): "t3.micro, t3.small",
    ("aws:elasticbeanstalk:environment", "EnvironmentType"): "LoadBalanced",
    ("aws:elasticbeanstalk:environment", "LoadBalancerType"): "application",
    ("aws:elasticbeanstalk:environment", "ServiceRole"): "aws-elasticbeanstalk-service-role",
    ("aws:elasticbeanstalk:command", "DeploymentPolicy"): "AllAtOnce",
    ("aws:elasticbeanstalk:command", "BatchSizeType"): "Percentage",
    ("aws:elasticbeanstalk:command", "BatchSize"): "100",
    ("aws:elasticbeanstalk:healthreporting:system", "SystemType"): "enhanced",
    ("aws:elasticbeanstalk:environment:process:default", "Port"): "80",
    ("aws:elasticbeanstalk:environment:process:default", "Protocol"): "HTTP",
    ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath"): "/",
    ("aws:elbv2:listener:default", "ListenerEnabled"): "true",
    ("aws:elbv2:loadbalancer", "IdleTimeout"): "60",
}

# Namespaces EB knows, with the options it accepts (None: any option name, as for environment variables).
_KNOWN_NAMESPACES: dict[str, set[str] | None] = {
    "aws:autoscaling:asg": {"MinSize", "MaxSize", "Availability Zones", "Cooldown", "Custom Availability Zones",
                            "EnableCapacityRebalancing"},
    "aws:autoscaling:launchconfiguration": {"InstanceType", "IamInstanceProfile", "EC2KeyName", "SecurityGroups",
                                            "SSHSourceRestriction", "ImageId", "MonitoringInterval",
                                            "RootVolumeType", "RootVolumeSize", "DisableIMDSv1",
                                            "DisableDefaultEC2SecurityGroup"},
    "aws:autoscaling:updatepolicy:rollingupdate": {"RollingUpdateEnabled", "RollingUpdateType", "MaxBatchSize",
                                                   "MinInstancesInService", "PauseTime", "Timeout"},
    "aws:ec2:instances": {"InstanceTypes", "EnableSpot", "SpotFleetOnDemandBase",
                          "SpotFleetOnDemandAboveBasePercentage", "SpotMaxPrice", "SupportedArchitectures"},
    "aws:ec2:vpc": {"VPCId", "Subnets", "ELBSubnets", "ELBScheme", "AssociatePublicIpAddress", "DBSubnets"},
    "aws:elasticbeanstalk:application": {"Application Healthcheck URL"},
    "aws:elasticbeanstalk:application:environment": None,
    "aws:elasticbeanstalk:application:environmentsecrets": None,
    "aws:elasticbeanstalk:command": {"DeploymentPolicy", "Timeout", "BatchSizeType", "BatchSize",
                                     "IgnoreHealthCheck"},
    "aws:elasticbeanstalk:environment": {"EnvironmentType", "LoadBalancerType", "LoadBalancerIsShared",
                                         "ServiceRole"},
    "aws:elasticbeanstalk:healthreporting:system": {"SystemType", "ConfigDocument", "EnhancedHealthAuthEnabled"},
    "aws:elasticbeanstalk:cloudwatch:logs": {"StreamLogs", "DeleteOnTerminate", "RetentionInDays"},
    "aws:elasticbeanstalk:managedactions": {"ManagedActionsEnabled", "PreferredStartTime", "ServiceRoleForManagedUpdates"},
    "aws:elasticbeanstalk:managedactions:platformupdate": {"UpdateLevel", "InstanceRefreshEnabled"},
    "aws:elbv2:loadbalancer": {"AccessLogsS3Bucket", "AccessLogsS3Enabled", "AccessLogsS3Prefix", "IdleTimeout",
                               "ManagedSecurityGroup", "SecurityGroups"},
}
_PROCESS_OPTIONS = {"DeregistrationDelay", "HealthCheckInterval", "HealthCheckPath", "HealthCheckTimeout",
                    "HealthyThresholdCount", "MatcherHTTPCode", "Port", "Protocol", "StickinessEnabled",
                    "StickinessLBCookieDuration", "StickinessType", "UnhealthyThresholdCount"}
_LISTENER_OPTIONS = {"DefaultProcess", "ListenerEnabled", "Protocol", "Rules", "SSLCertificateArns", "SSLPolicy"}
_RULE_OPTIONS = {"HostHeaders", "PathPatterns", "Priority", "Process"}

# Changing any of these replaces the instances, as a launch-configuration change does in AWS.
_REPLACING_OPTIONS = {
    ("aws:autoscaling:launchconfiguration", "InstanceType"),
    ("aws:autoscaling:launchconfiguration", "EC2KeyName"),
    ("aws:autoscaling:launchconfiguration", "IamInstanceProfile"),
    ("aws:autoscaling:launchconfiguration", "SecurityGroups"),
    ("aws:ec2:instances", "InstanceTypes"),
}


def _check_option(namespace: str, option: str) -> None:
    allowed: set[str] | None
    if namespace.startswith("aws:elasticbeanstalk:environment:process:"):
        allowed = _PROCESS_OPTIONS
    elif namespace.startswith("aws:elbv2:listener:"):
        allowed = _LISTENER_OPTIONS
    elif namespace.startswith("aws:elbv2:listenerrule:"):
        allowed = _RULE_OPTIONS
    elif namespace in _KNOWN_NAMESPACES:
        allowed = _KNOWN_NAMESPACES[namespace]
    else:
        raise InvalidParameterValueError(
            f"Invalid option specification (Namespace: '{namespace}', OptionName: '{option}'): "
            "Unknown configuration setting."
        )
    if allowed is not None and option not in allowed:
        raise InvalidParameterValueError(
            f"Invalid option specification (Namespace: '{namespace}', OptionName: '{option}'): "
            "Unknown configuration setting."
        )


OptionKey = tuple[str, str, str]  # (resource name or "", namespace, option name)


def _parse_options(settings: list[dict[str, Any]] | None) -> dict[OptionKey, str]:
    out: dict[OptionKey, str] = {}
    for item in settings or []:
        namespace, option = item.get("Namespace"), item.get("OptionName")
        if not namespace or not option:
            raise InvalidParameterValueError("Option settings need both Namespace and OptionName.")
        _check_option(namespace, option)
        out[(item.get("ResourceName") or "", namespace, option)] = "" if item.get("Value") is None else str(
            item["Value"]
        )
    return out


# --------------------------------------------------------------------------------------------------
# Models


def _now() -> datetime:
    return datetime.now(UTC)


def _rand(n: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(random.choice(alphabet) for _ in range(n))


@dataclass
class Application:
    name: str
    arn: str
    description: str = ""
    created: datetime = field(default_factory=_now)
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
    created: datetime = field(default_factory=_now)
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
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    tags: dict[str, str] = field(default_factory=dict)
    instance_ids: list[str] = field(default_factory=list)
    security_group_id: str | None = None
    load_balancer: str = ""
    stages: list[Stage] = field(default_factory=list)
    request_id: str = ""
    polls: int = 0
    terminated_at: datetime | None = None

    def option(self, namespace: str, name: str, resource: str = "") -> str:
        return self.options.get((resource, namespace, name), _DEFAULT_OPTIONS.get((namespace, name), ""))

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
class Failure:
    """An injected deployment failure, consumed by the next matching create/update."""

    environment: str | None
    message: str


_SEVERITY_ORDER = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


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
        now = _now()
        date = now.replace(microsecond=now.microsecond // 1000 * 1000)
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

    # -- lifecycle ----------------------------------------------------------------------------------
    def poll(self, env: Environment) -> None:
        """A describe call looked at ``env``: advance its running operation by one stage."""
        if not env.stages:
            return
        env.polls += 1
        if env.polls < self.polls_per_stage:
            return
        env.polls = 0
        stage = env.stages.pop(0)
        self.run_stage(env, stage)

    def run_stage(self, env: Environment, stage: Stage) -> None:
        if stage.action:
            extra = stage.action(env)
            if isinstance(extra, Stage):  # an action may decide the operation's outcome
                env.stages[:0] = [extra] if extra.events or extra.status else []
        for severity, message in stage.events:
            self.emit(env, severity, message.format(env=env, state=self))
        if stage.status:
            env.status = stage.status
        if stage.health:
            env.health = stage.health
        if stage.health_status:
            env.health_status = stage.health_status
        env.updated = _now()

    def take_failure(self, env_name: str) -> Failure | None:
        for i, failure in enumerate(self.failures):
            if failure.environment in (None, env_name):
                return self.failures.pop(i)
        return None

    def next_event_seq(self) -> int:
        return self._seq


def _state(backend: EBBackend) -> EBState:
    # Stored on moto's backend object: moto's reset replaces that object's __dict__, wiping this too.
    with _lock:
        state = backend.__dict__.get("_faithful_eb")
        if state is None:
            state = backend.__dict__["_faithful_eb"] = EBState(backend)
        return state


# --------------------------------------------------------------------------------------------------
# moto's other services, reached in-process


def _ec2(state: EBState) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[state.account_id][state.region]


def _s3(state: EBState) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[state.account_id]["aws"]


def _iam(state: EBState) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[state.account_id]["aws"]


def _storage_bucket(state: EBState) -> str:
    return f"elasticbeanstalk-{state.region}-{state.account_id}"


def _ensure_security_group(state: EBState, env: Environment) -> str:
    ec2 = _ec2(state)
    if env.security_group_id:
        return env.security_group_id
    vpc_id = env.option("aws:ec2:vpc", "VPCId") or ec2.get_default_vpc().id
    name = f"awseb-{env.id}-stack-AWSEBSecurityGroup-{_rand(12, string.ascii_uppercase + string.digits)}"
    sg = ec2.create_security_group(
        name=name, description="SecurityGroup for ElasticBeanstalk environment.", vpc_id=vpc_id,
        tags={"elasticbeanstalk:environment-name": env.name, "elasticbeanstalk:environment-id": env.id,
              "Name": env.name},
    )
    env.security_group_id = sg.id
    return sg.id


def _subnets(state: EBState, env: Environment) -> list[str]:
    configured = [s.strip() for s in env.option("aws:ec2:vpc", "Subnets").split(",") if s.strip()]
    if configured:
        return configured
    ec2 = _ec2(state)
    vpc = ec2.get_default_vpc()
    subnets = [sn for sn in ec2.describe_subnets() if sn.vpc_id == vpc.id]
    return [sn.id for sn in sorted(subnets, key=lambda sn: sn.availability_zone)]


def _instance_type(env: Environment) -> str:
    explicit = env.options.get(("", "aws:autoscaling:launchconfiguration", "InstanceType"))
    if explicit:
        return explicit
    types = env.options.get(("", "aws:ec2:instances", "InstanceTypes"))
    if types:
        return types.split(",")[0].strip()
    return _DEFAULT_OPTIONS[("aws:autoscaling:launchconfiguration", "InstanceType")]


def _launch_problem(state: EBState, env: Environment) -> str | None:
    """What AWS would refuse when launching instances for ``env`` (missing profile or key pair)."""
    profile = env.option("aws:autoscaling:launchconfiguration", "IamInstanceProfile")
    if profile:
        try:
            _iam(state).get_instance_profile(profile)
        except Exception:
            return f"The instance profile {profile} associated with the environment does not exist."
    key = env.option("aws:autoscaling:launchconfiguration", "EC2KeyName")
    if key and key not in _ec2(state).key_pairs:
        return (f"Creating Auto Scaling launch configuration failed Reason: The key pair '{key}' does not "
                "exist")
    for group in env.option("aws:autoscaling:launchconfiguration", "SecurityGroups").split(","):
        if group.strip() and _ec2(state).get_security_group_by_name_or_id(group.strip()) is None:
            return (f"Creating Auto Scaling launch configuration failed Reason: The security group "
                    f"'{group.strip()}' does not exist")
    return None


def _launch_instances(state: EBState, env: Environment, count: int) -> list[str]:
    ec2 = _ec2(state)
    sg_id = _ensure_security_group(state, env)
    subnets = _subnets(state, env)
    image_id = next(iter(ec2.amis), "ami-12c6146b")
    asg_name = f"awseb-{env.id}-stack-AWSEBAutoScalingGroup-{env.id[2:].upper()}"
    key = env.option("aws:autoscaling:launchconfiguration", "EC2KeyName") or None
    # Extra security groups (names or ids) attached to the instances, as AWS does with this option.
    extra = [g.strip() for g in env.option("aws:autoscaling:launchconfiguration", "SecurityGroups").split(",")
             if g.strip()]
    extra_ids = [g if g.startswith("sg-") else ec2.get_security_group_by_name_or_id(g).id for g in extra]
    new_ids = []
    for i in range(count):
        reservation = ec2.run_instances(
            image_id, 1, None, [],
            instance_type=_instance_type(env), is_instance_type_default=False, region_name=state.region,
            subnet_id=subnets[(len(env.instance_ids) + i) % len(subnets)] if subnets else None,
            key_name=key, security_group_ids=[sg_id, *extra_ids], associate_public_ip=True,
            tags={"instance": {
                "elasticbeanstalk:environment-name": env.name,
                "elasticbeanstalk:environment-id": env.id,
                "aws:autoscaling:groupName": asg_name,
                "Name": env.name,
            }},
        )
        for inst in reservation.instances:
            if state.address_pool:
                inst.nics[0].public_ip = state.address_pool.pop(0)
        new_ids.extend(inst.id for inst in reservation.instances)
    env.instance_ids.extend(new_ids)
    return new_ids


def _terminate_instances(state: EBState, env: Environment, ids: list[str]) -> None:
    if ids:
        ec2 = _ec2(state)
        for inst in ec2.get_multi_instances_by_id(ids):
            # A pooled address goes back to the pool, for the replacement instance.
            if inst.public_ip and inst.public_ip not in state.address_pool and inst.public_ip in state.pooled:
                state.address_pool.append(inst.public_ip)
        ec2.terminate_instances(ids)
    env.instance_ids = [i for i in env.instance_ids if i not in ids]


def _desired_count(env: Environment) -> int:
    return max(1, int(env.option("aws:autoscaling:asg", "MinSize") or 1))


# --------------------------------------------------------------------------------------------------
# Operations as stage lists


def _create_stages(state: EBState, env: Environment, failure: Failure | None) -> list[Stage]:
    def launch(env: Environment) -> Stage | None:
        problem = _launch_problem(state, env)
        if problem:
            return Stage(events=[("ERROR", problem),
                                 ("ERROR", "Stack named 'awseb-{env.id}-stack' aborted operation. Current state: "
                                           "'CREATE_FAILED'  Reason: The following resource(s) failed to create: "
                                           "[AWSEBAutoScalingGroup]."),
                                 ("ERROR", "Create environment operation is complete, but with errors. For more "
                                           "information, see troubleshooting documentation.")],
                         status="Ready", health="Red", health_status="Severe")
        _launch_instances(state, env, _desired_count(env))
        env.stages[:] = _finish_create(env, failure)
        return None

    return [
        Stage(events=[("INFO", f"Using {_storage_bucket(state)} as Amazon S3 storage bucket for environment data.")]),
        Stage(action=lambda e: _ensure_security_group(state, e) and None,
              events=[("INFO", "Created security group named: {env.security_group_id}"),
                      ("INFO", "Created load balancer named: {env.load_balancer}"),
                      ("INFO", "Created target group named: arn:aws:elasticbeanstalk-target-group/{env.id}")]),
        Stage(events=[("INFO", "Waiting for EC2 instances to launch. This may take a few minutes.")],
              action=launch),
    ]


def _finish_create(env: Environment, failure: Failure | None) -> list[Stage]:
    if failure:
        return [
            Stage(events=[("ERROR", "Instance deployment failed. For details, see 'eb-engine.log'."),
                          ("ERROR", "[Instance: {env.instance_ids[0]}] Command failed on instance. Return code: 1 "
                                    "Output: " + _escape(failure.message) + "."),
                          ("INFO", "Command execution completed on all instances. Summary: [Successful: 0, "
                                   "Failed: {n}].".replace("{n}", str(len(env.instance_ids))))],
                  health="Red", health_status="Severe"),
            Stage(events=[("ERROR", "Create environment operation is complete, but with errors. For more "
                                    "information, see troubleshooting documentation.")],
                  status="Ready", health="Red", health_status="Severe"),
        ]
    return [
        Stage(events=[("INFO", "Instance deployment completed successfully.")]),
        Stage(events=[("INFO", "Application available at {env.cname}."),
                      ("INFO", "Successfully launched environment: {env.name}")],
              status="Ready", health="Green", health_status="Ok"),
    ]


def _escape(text: str) -> str:
    # Stage messages go through str.format; keep braces from the injected text literal.
    return text.replace("{", "{{").replace("}", "}}")


def _update_stages(state: EBState, env: Environment, new_label: str | None, replace: bool, resize: bool,
                   failure: Failure | None) -> list[Stage]:
    previous = env.version_label
    stages: list[Stage] = []
    if replace or resize:
        def reconfigure(env: Environment) -> Stage | None:
            problem = _launch_problem(state, env)
            if problem:
                env.stages.clear()
                return Stage(events=[("ERROR", problem),
                                     ("ERROR", "Failed to deploy configuration.")],
                             status="Ready", health=env.health, health_status=env.health_status)
            old = list(env.instance_ids)
            if replace:
                added = _launch_instances(state, env, _desired_count(env))
                _terminate_instances(state, env, old)
            else:
                want = _desired_count(env)
                added = _launch_instances(state, env, max(0, want - len(old)))
                _terminate_instances(state, env, old[want:] if len(old) > want else [])
            msgs = [("INFO", f"Added instance [{i}] to your environment.") for i in added]
            msgs += [("INFO", f"Removed instance [{i}] from your environment.")
                     for i in old if i not in env.instance_ids]
            return Stage(events=msgs)

        stages.append(Stage(events=[("INFO", "Updating environment {env.name}'s configuration settings.")],
                            action=reconfigure))
    if new_label and new_label != previous:
        stages.append(Stage(events=[("INFO", "Deploying new version to instance(s).")]))
        if failure:
            stages += [
                Stage(events=[("ERROR", "Instance deployment failed. For details, see 'eb-engine.log'."),
                              ("ERROR", "[Instance: {env.instance_ids[0]}] Command failed on instance. Return "
                                        "code: 1 Output: " + _escape(failure.message) + "."),
                              ("WARN", "Environment health has transitioned from Ok to Degraded. Command failed "
                                       "on all instances.")],
                      health="Red", health_status="Degraded"),
                Stage(events=[("INFO", f"Rolling back to previous application version '{previous}'." if previous
                               else "No previous application version to roll back to.")]),
                Stage(events=[("ERROR", "Failed to deploy application.")]
                      + ([("INFO", "Environment health has transitioned from Degraded to Ok.")] if previous else []),
                      status="Ready", health="Green" if previous else "Red",
                      health_status="Ok" if previous else "Severe"),
            ]
            return stages
        stages.append(Stage(events=[("INFO", "Instance deployment completed successfully."),
                                    ("INFO", "New application version was deployed to running EC2 instances.")],
                            action=lambda e: setattr(e, "version_label", new_label)))
    stages.append(Stage(events=[("INFO", "Environment update completed successfully.")],
                        status="Ready", health="Green", health_status="Ok"))
    return stages


def _terminate_stages(state: EBState, env: Environment) -> list[Stage]:
    def remove(env: Environment) -> None:
        _terminate_instances(state, env, list(env.instance_ids))
        if env.security_group_id:
            try:
                _ec2(state).delete_security_group(group_id=env.security_group_id)
            except Exception:  # still referenced (e.g. by an EFS rule the operator added): AWS leaves it too
                pass

    def done(env: Environment) -> None:
        env.terminated_at = _now()

    return [
        Stage(events=[("INFO", "Waiting for EC2 instances to terminate. This may take a few minutes.")],
              action=remove),
        Stage(events=[("INFO", "Deleted security group named: {env.security_group_id}")]),
        Stage(events=[("INFO", "terminateEnvironment completed successfully.")], action=done,
              status="Terminated", health="Grey", health_status="Unknown"),
    ]


# --------------------------------------------------------------------------------------------------
# Request helpers


def _p(self: EBResponse, name: str, default: Any = None) -> Any:
    return self._get_param(name, default)


def _as_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    if text.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(text), UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _as_bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() == "true"


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or []}


def _new_request(self: EBResponse) -> str:
    # Events carry the RequestId of the call that started the operation, as in AWS; the response gets the
    # same id through _enrich_response below.
    request_id = str(uuid.uuid4())
    self._faithful_request_id = request_id
    return request_id


# --------------------------------------------------------------------------------------------------
# EBResponse methods


def create_storage_location(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    bucket = _storage_bucket(state)
    s3 = _s3(state)
    with _lock:
        if bucket not in s3.buckets:
            s3.create_bucket(bucket, state.region)
    return ActionResult({"S3Bucket": bucket})


def list_platform_versions(self: EBResponse) -> ActionResult:
    filters = _p(self, "Filters", []) or []
    found = [s for s in _platforms(self.region) if all(_matches_filter(s, f) for f in filters)]
    return ActionResult({"PlatformSummaryList": found})


def describe_platform_version(self: EBResponse) -> ActionResult:
    arn = _p(self, "PlatformArn")
    for summary in _platforms(self.region):
        if summary["PlatformArn"] == arn:
            return ActionResult({"PlatformDescription": _platform_description(summary)})
    raise InvalidParameterValueError(f"No Platform named '{arn}' found.")


def list_available_solution_stacks(self: EBResponse) -> ActionResult:
    descriptions = [_platform_description(s) for s in _platforms(self.region)]
    stacks = [d["SolutionStackName"] for d in descriptions]
    return ActionResult({"SolutionStacks": stacks,
                         "SolutionStackDetails": [{"SolutionStackName": s, "PermittedFileTypes": ["zip"]}
                                                  for s in stacks]})


def _resolve_platform(self: EBResponse) -> tuple[str, str]:
    arn, stack = _p(self, "PlatformArn"), _p(self, "SolutionStackName")
    if arn and stack:
        raise InvalidParameterValueError("You can't specify both PlatformArn and SolutionStackName.")
    for summary in _platforms(self.region):
        description = _platform_description(summary)
        if (arn and description["PlatformArn"] == arn) or (stack and description["SolutionStackName"] == stack):
            return description["PlatformArn"], description["SolutionStackName"]
    if arn:
        raise InvalidParameterValueError(f"No Platform named '{arn}' found.")
    if stack:
        raise InvalidParameterValueError(f"No Solution Stack named '{stack}' found.")
    raise InvalidParameterValueError("You must specify either PlatformArn or SolutionStackName.")


def create_application(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    name = _p(self, "ApplicationName")
    with _lock:
        if name in state.applications:
            raise InvalidParameterValueError(f"Application {name} already exists.")
        app = Application(name=name, arn=state.arn("application", name), description=_p(self, "Description", ""),
                          tags=_tags(_p(self, "Tags")))
        state.applications[name] = app
        return ActionResult({"Application": app.describe(state)})


def describe_applications(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    names = _p(self, "ApplicationNames") or []
    with _lock:
        apps = [a.describe(state) for a in state.applications.values() if not names or a.name in names]
    return ActionResult({"Applications": apps})


def delete_application(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    name = _p(self, "ApplicationName")
    with _lock:
        state.app(name)
        running = [e for e in state.live_environments() if e.application == name]
        if running and not _as_bool(_p(self, "TerminateEnvByForce"), False):
            raise InvalidParameterValueError(
                f"Unable to delete application {name} because it has running environments: "
                + ", ".join(e.name for e in running))
        for env in running:
            env.stages = _terminate_stages(state, env)
        del state.applications[name]
        for key in [k for k in state.versions if k[0] == name]:
            del state.versions[key]
    return EmptyResult()


def create_application_version(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    app_name, label = _p(self, "ApplicationName"), _p(self, "VersionLabel")
    bundle = _p(self, "SourceBundle") or {}
    with _lock:
        if app_name not in state.applications:
            if not _as_bool(_p(self, "AutoCreateApplication"), False):
                raise InvalidParameterValueError(f"No Application named '{app_name}' found.")
            state.applications[app_name] = Application(name=app_name, arn=state.arn("application", app_name))
        if (app_name, label) in state.versions:
            raise InvalidParameterValueError(f"Application Version {label} already exists.")
        bucket, key = bundle.get("S3Bucket"), bundle.get("S3Key")
        if not bucket or not key:
            raise InvalidParameterValueError("A source bundle (S3Bucket and S3Key) is required.")
        try:
            found = _s3(state).get_object(bucket, key)
        except Exception:
            found = None
        if found is None:
            raise InvalidParameterValueError(
                f"Unable to download from S3 location (Bucket: {bucket} Key: {key}). Reason: Not Found")
        version = AppVersion(
            application=app_name, label=label, arn=state.arn("applicationversion", f"{app_name}/{label}"),
            bucket=bucket, key=key, description=_p(self, "Description", "") or "",
            status="Processed" if _as_bool(_p(self, "Process"), False) else "Unprocessed",
            tags=_tags(_p(self, "Tags")),
        )
        state.versions[(app_name, label)] = version
        return ActionResult({"ApplicationVersion": version.describe()})


def describe_application_versions(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    app_name, labels = _p(self, "ApplicationName"), _p(self, "VersionLabels") or []
    with _lock:
        versions = sorted(state.versions.values(), key=lambda v: v.created, reverse=True)
        out = [v.describe() for v in versions
               if (not app_name or v.application == app_name) and (not labels or v.label in labels)]
    max_records = _p(self, "MaxRecords")
    if max_records:
        out = out[: int(max_records)]
    return ActionResult({"ApplicationVersions": out})


def delete_application_version(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    app_name, label = _p(self, "ApplicationName"), _p(self, "VersionLabel")
    with _lock:
        version = state.versions.get((app_name, label))
        if version is None:
            raise InvalidParameterValueError(f"No Application Version named '{label}' found.")
        in_use = [e.name for e in state.live_environments() if e.application == app_name and e.version_label == label]
        if in_use:
            raise InvalidParameterValueError(
                f"Unable to delete application version '{label}' because it is being used by the following "
                f"environments: {', '.join(in_use)}")
        del state.versions[(app_name, label)]
        if _as_bool(_p(self, "DeleteSourceBundle"), False):
            try:
                _s3(state).delete_object(version.bucket, version.key)
            except Exception:
                pass
    return EmptyResult()


def check_dns_availability(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    prefix = _p(self, "CNAMEPrefix")
    cname = f"{prefix}.{state.region}.elasticbeanstalk.com"
    with _lock:
        taken = any(e.cname == cname for e in state.live_environments())
    return ActionResult({"Available": not taken, "FullyQualifiedCNAME": cname})


def create_environment(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    request_id = _new_request(self)
    app_name, name = _p(self, "ApplicationName"), _p(self, "EnvironmentName")
    with _lock:
        state.app(app_name)
        if not name or len(name) < 4 or len(name) > 40:
            raise InvalidParameterValueError(
                f"Value {name} at 'EnvironmentName' failed to satisfy constraint: length must be 4 to 40.")
        if any(e.name == name for e in state.live_environments()):
            raise InvalidParameterValueError(f"Environment {name} already exists.")
        platform_arn, stack = _resolve_platform(self)
        label = _p(self, "VersionLabel")
        if label and (app_name, label) not in state.versions:
            raise InvalidParameterValueError(f"No Application Version named '{label}' found.")
        options = _parse_options(_p(self, "OptionSettings"))
        prefix = _p(self, "CNAMEPrefix")
        if prefix:
            cname = f"{prefix}.{state.region}.elasticbeanstalk.com"
            if any(e.cname == cname for e in state.live_environments()):
                raise InvalidParameterValueError(f"DNS name ({cname}) is not available.")
        else:
            cname = f"{name}.eba-{_rand(8)}.{state.region}.elasticbeanstalk.com"
        env_id = "e-" + _rand(10)
        lb = f"awseb-AWSEB-{_rand(12, string.ascii_uppercase + string.digits)}"
        tier = _p(self, "Tier") or {}
        env = Environment(
            id=env_id, name=name, application=app_name, arn=state.arn("environment", f"{app_name}/{name}"),
            platform_arn=platform_arn, solution_stack=stack, cname=cname,
            endpoint=f"{lb}-{random.randint(100000000, 999999999)}.{state.region}.elb.amazonaws.com",
            tier={"Name": tier.get("Name", "WebServer"), "Type": tier.get("Type", "Standard"),
                  "Version": tier.get("Version", "1.0")},
            options=options, description=_p(self, "Description", "") or "", version_label=label,
            tags={**_tags(_p(self, "Tags")), "elasticbeanstalk:environment-name": name,
                  "elasticbeanstalk:environment-id": env_id},
            load_balancer=lb, request_id=request_id,
        )
        state.environments.append(env)
        state.emit(env, "INFO", "createEnvironment is starting.")
        env.stages = _create_stages(state, env, state.take_failure(name) if label else None)
        return ActionResult(env.describe())


def describe_environments(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    app_name, label = _p(self, "ApplicationName"), _p(self, "VersionLabel")
    ids, names = _p(self, "EnvironmentIds") or [], _p(self, "EnvironmentNames") or []
    include_deleted = _as_bool(_p(self, "IncludeDeleted"), True)
    deleted_back_to = _as_time(_p(self, "IncludedDeletedBackTo")) or (_now() - timedelta(hours=1))
    with _lock:
        out = []
        for env in state.environments:
            if app_name and env.application != app_name:
                continue
            if label and env.version_label != label:
                continue
            if ids and env.id not in ids:
                continue
            if names and env.name not in names:
                continue
            if env.status == "Terminated" and (not include_deleted or (env.terminated_at or _now()) < deleted_back_to):
                continue
            state.poll(env)
            out.append(env.describe())
    return ActionResult({"Environments": out})


def update_environment(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    request_id = _new_request(self)
    with _lock:
        env = state.find_env(_p(self, "EnvironmentName"), _p(self, "EnvironmentId"))
        if env.status != "Ready" or env.busy:
            raise InvalidParameterValueError(
                f"Environment named {env.name} is in an invalid state for this operation. Must be Ready.")
        label = _p(self, "VersionLabel")
        if label and (env.application, label) not in state.versions:
            raise InvalidParameterValueError(f"No Application Version named '{label}' found.")
        changes = _parse_options(_p(self, "OptionSettings"))
        removals = {(r.get("ResourceName") or "", r["Namespace"], r["OptionName"])
                    for r in _p(self, "OptionsToRemove") or []}
        new_options = {k: v for k, v in env.options.items() if k not in removals}
        new_options.update(changes)
        changed_keys = {k for k in set(env.options) | set(new_options)
                        if env.options.get(k) != new_options.get(k)}
        replace = any((ns, opt) in _REPLACING_OPTIONS for _, ns, opt in changed_keys)
        resize = any(ns == "aws:autoscaling:asg" and opt == "MinSize" for _, ns, opt in changed_keys)
        env.options = new_options
        if _p(self, "Description") is not None:
            env.description = _p(self, "Description")
        if _p(self, "PlatformArn") or _p(self, "SolutionStackName"):
            env.platform_arn, env.solution_stack = _resolve_platform(self)
        env.request_id = request_id
        env.status = "Updating"
        state.emit(env, "INFO", "Environment update is starting.")
        failure = state.take_failure(env.name) if label and label != env.version_label else None
        env.stages = _update_stages(state, env, label, replace, resize, failure)
        env.updated = _now()
        return ActionResult(env.describe())


def terminate_environment(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    request_id = _new_request(self)
    with _lock:
        env = state.find_env(_p(self, "EnvironmentName"), _p(self, "EnvironmentId"))
        if env.status == "Terminating":
            raise InvalidParameterValueError(
                f"Environment named {env.name} is in an invalid state for this operation. Must be Ready.")
        env.request_id = request_id
        env.status = "Terminating"
        state.emit(env, "INFO", "terminateEnvironment is starting.")
        env.stages = _terminate_stages(state, env)
        return ActionResult(env.describe())


def describe_events(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    app_name, env_name, env_id = _p(self, "ApplicationName"), _p(self, "EnvironmentName"), _p(self, "EnvironmentId")
    label, request_id = _p(self, "VersionLabel"), _p(self, "RequestId")
    severity = _p(self, "Severity")
    start, end = _as_time(_p(self, "StartTime")), _as_time(_p(self, "EndTime"))
    max_records = int(_p(self, "MaxRecords") or 1000)
    offset = int(_p(self, "NextToken") or 0)
    with _lock:
        # Polling events for an environment advances it, like describe_environments.
        for env in state.environments:
            if env.status == "Terminated":
                continue
            if (env_name and env.name == env_name) or (env_id and env.id == env_id) or (
                    not env_name and not env_id and app_name and env.application == app_name):
                state.poll(env)
        env_name_for_id = None
        if env_id:
            env_name_for_id = next((e.name for e in state.environments if e.id == env_id), "\0")
        found = []
        for ev in sorted(state.events, key=lambda e: e.seq, reverse=True):  # newest first, as AWS returns them
            if app_name and ev.application != app_name:
                continue
            if env_name and ev.environment != env_name:
                continue
            if env_name_for_id and ev.environment != env_name_for_id:
                continue
            if label and ev.version_label != label:
                continue
            if request_id and ev.request_id != request_id:
                continue
            if severity and _SEVERITY_ORDER.index(ev.severity) < _SEVERITY_ORDER.index(severity):
                continue
            if start and ev.date < start:  # on or after StartTime
                continue
            if end and ev.date >= end:  # up to, not including, EndTime
                continue
            found.append(ev.describe())
    page = found[offset: offset + max_records]
    result: dict[str, Any] = {"Events": page}
    if offset + max_records < len(found):
        result["NextToken"] = str(offset + max_records)
    return ActionResult(result)


def describe_environment_resources(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    with _lock:
        env = state.find_env(_p(self, "EnvironmentName"), _p(self, "EnvironmentId"))
        asg = f"awseb-{env.id}-stack-AWSEBAutoScalingGroup-{env.id[2:].upper()}"
        resources = {
            "EnvironmentName": env.name,
            "AutoScalingGroups": [{"Name": asg}],
            "Instances": [{"Id": i} for i in env.instance_ids],
            "LaunchConfigurations": [],
            "LaunchTemplates": [{"Id": f"lt-{env.id[2:]}0000000"}],
            "LoadBalancers": [{"Name": f"arn:aws:elasticloadbalancing:{state.region}:{state.account_id}:"
                                       f"loadbalancer/app/{env.load_balancer}/{env.id[2:]}"}],
            "Triggers": [],
            "Queues": [],
        }
    return ActionResult({"EnvironmentResources": resources})


def describe_environment_health(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    with _lock:
        env = state.find_env(_p(self, "EnvironmentName"), _p(self, "EnvironmentId"))
        state.poll(env)
        counts = {k: 0 for k in ("NoData", "Unknown", "Pending", "Ok", "Info", "Warning", "Degraded", "Severe")}
        bucket = env.health_status if env.health_status in counts else "NoData"
        counts[bucket] = len(env.instance_ids)
        causes = []
        if env.health == "Red":
            causes = ["Command failed on all instances."]
        elif env.status != "Ready":
            causes = [f"Environment is {env.status.lower()}."]
        result = {
            "EnvironmentName": env.name,
            "HealthStatus": env.health_status,
            "Status": env.status,
            "Color": env.health,
            "Causes": causes,
            "InstancesHealth": counts,
            "RefreshedAt": _now(),
        }
    return ActionResult(result)


def describe_instances_health(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    with _lock:
        env = state.find_env(_p(self, "EnvironmentName"), _p(self, "EnvironmentId"))
        ec2 = _ec2(state)
        found = []
        for instance_id in env.instance_ids:
            instance = ec2.get_instance(instance_id)
            found.append({
                "InstanceId": instance_id,
                "HealthStatus": env.health_status,
                "Color": env.health,
                "Causes": ["Command failed on instance."] if env.health == "Red" else [],
                "LaunchedAt": instance.launch_time,
                "AvailabilityZone": instance.placement.zone,
                "InstanceType": instance.instance_type,
                **({"Deployment": {"VersionLabel": env.version_label, "Status": "Deployed"}}
                   if env.version_label else {}),
            })
    return ActionResult({"InstanceHealthList": found, "RefreshedAt": _now()})


def describe_configuration_settings(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    app_name, env_name = _p(self, "ApplicationName"), _p(self, "EnvironmentName")
    if _p(self, "TemplateName"):
        raise InvalidParameterValueError("Configuration templates are not modelled by this emulator.")
    with _lock:
        env = state.find_env(env_name)
        if env.application != app_name:
            raise InvalidParameterValueError(f"No Environment found for EnvironmentName = '{env_name}'.")
        merged: dict[OptionKey, str] = {("", ns, opt): v for (ns, opt), v in _DEFAULT_OPTIONS.items()}
        merged.update(env.options)
        if env.security_group_id:
            # As AWS shows it: the group EB created for the instances first, then the operator's.
            key = ("", "aws:autoscaling:launchconfiguration", "SecurityGroups")
            extra = [g for g in merged.get(key, "").split(",") if g.strip()]
            merged[key] = ",".join([env.security_group_id, *extra])
        settings = [
            {**({"ResourceName": r} if r else {}), "Namespace": ns, "OptionName": opt, "Value": v}
            for (r, ns, opt), v in sorted(merged.items())
        ]
        result = {
            "SolutionStackName": env.solution_stack,
            "PlatformArn": env.platform_arn,
            "ApplicationName": env.application,
            "EnvironmentName": env.name,
            "DeploymentStatus": "deployed",
            "DateCreated": env.created,
            "DateUpdated": env.updated,
            "OptionSettings": settings,
        }
        if env.description:
            result["Description"] = env.description
    return ActionResult({"ConfigurationSettings": [result]})


def _taggable(state: EBState, arn: str) -> dict[str, str]:
    for env in state.environments:
        if env.arn == arn and env.status != "Terminated":
            return env.tags
    for app in state.applications.values():
        if app.arn == arn:
            return app.tags
    for version in state.versions.values():
        if version.arn == arn:
            return version.tags
    from moto.elasticbeanstalk.exceptions import ResourceNotFoundException

    raise ResourceNotFoundException(f"Resource not found for ARN '{arn}'.")


def list_tags_for_resource(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    arn = _p(self, "ResourceArn")
    with _lock:
        tags = _taggable(state, arn)
        return ActionResult({"ResourceArn": arn, "ResourceTags": [{"Key": k, "Value": v} for k, v in tags.items()]})


def update_tags_for_resource(self: EBResponse) -> ActionResult:
    state = _state(self.elasticbeanstalk_backend)
    arn = _p(self, "ResourceArn")
    with _lock:
        tags = _taggable(state, arn)
        tags.update(_tags(_p(self, "TagsToAdd")))
        for key in _p(self, "TagsToRemove") or []:
            tags.pop(key, None)
    return EmptyResult()


def _enrich_response(self: EBResponse, headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    # moto's own version replaces everything between the first <RequestId> and the last </RequestId>, which
    # destroys describe_events output (events carry a RequestId too). Replace only ResponseMetadata's, and use
    # the id our events carry when this call started an operation (as AWS does).
    import re

    from moto.utilities.aws_headers import gen_amzn_requestid_long

    if "status" in headers:
        headers["status"] = str(headers["status"])
    request_id = getattr(self, "_faithful_request_id", None) or gen_amzn_requestid_long()
    headers["x-amzn-requestid"] = request_id
    if isinstance(body, str):
        body = re.sub(r"(<ResponseMetadata>\s*<RequestId>)[^<]*(</RequestId>)", rf"\g<1>{request_id}\g<2>", body)
    return headers, body


_METHODS = [
    create_storage_location, list_platform_versions, describe_platform_version, list_available_solution_stacks,
    create_application, describe_applications, delete_application,
    create_application_version, describe_application_versions, delete_application_version,
    check_dns_availability, create_environment, describe_environments, update_environment, terminate_environment,
    describe_events, describe_environment_resources, describe_environment_health, describe_instances_health, describe_configuration_settings,
    list_tags_for_resource, update_tags_for_resource,
]


# --------------------------------------------------------------------------------------------------
# Control endpoint: POST /moto-api/elasticbeanstalk/control


def control(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """Inject failures or slow the lifecycle down; GET shows the pending settings.

    POST body (JSON): {"account_id": "...", "region": "...",
                       "fail_next_deploy": {"environment_name": "name or null for any", "message": "why"},
                       "polls_per_stage": 1,
                       "instance_addresses": ["10.232.0.11", ...]}  # public IPs for the next launched instances
    """
    body = request.get_data(as_text=True) if hasattr(request, "get_data") else ""
    params = json.loads(body) if body else {}
    account = params.get("account_id", DEFAULT_ACCOUNT)
    region = params.get("region", DEFAULT_REGION)
    state = _state(eb_backends[account][region])
    with _lock:
        if request.method == "POST":
            fail = params.get("fail_next_deploy")
            if fail is not None:
                state.failures.append(Failure(environment=fail.get("environment_name"),
                                              message=fail.get("message") or "Injected deployment failure"))
            if "polls_per_stage" in params:
                state.polls_per_stage = max(1, int(params["polls_per_stage"]))
            if "instance_addresses" in params:
                state.address_pool = [str(a) for a in params["instance_addresses"]]
                state.pooled = set(state.address_pool)
        out = {"failures": [f.__dict__ for f in state.failures], "polls_per_stage": state.polls_per_stage,
               "instance_addresses": state.address_pool}
    return 200, {"Content-Type": "application/json"}, json.dumps(out)


CONTROL_PATH = "/moto-api/elasticbeanstalk/control"


def install() -> None:
    """Patch moto's Elastic Beanstalk and register the control endpoint. Idempotent."""
    for method in _METHODS:
        setattr(EBResponse, method.__name__, method)
    EBResponse._enrich_response = _enrich_response  # type: ignore[method-assign]
    from moto.moto_api._internal import urls as moto_api_urls

    moto_api_urls.url_paths["{0}" + CONTROL_PATH] = control
