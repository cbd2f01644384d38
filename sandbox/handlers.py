"""Elastic Beanstalk's API in moto's server: snake_case methods installed on moto's ``EBResponse``.

Each returns an ``ActionResult``, which moto serialises through botocore's own response shapes, so real boto3
clients and the AWS CLI parse the answers. moto 5.2's own EB lacks most of these calls, ignores OptionSettings,
CNAMEPrefix and VersionLabel, and starts every environment Ready; these replace it for the calls a deploy makes.
Describe calls are the polls that drive the lifecycle (sandbox/lifecycle.py).
"""

from __future__ import annotations

import random
import re
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.exceptions import ServiceException
from moto.elasticbeanstalk.exceptions import InvalidParameterValueError, ResourceNotFoundException
from moto.elasticbeanstalk.responses import EBResponse
from moto.utilities.aws_headers import gen_amzn_requestid_long

from sandbox import lifecycle, platforms
from sandbox.lifecycle import ec2_backend, poll, s3_backend, storage_bucket
from sandbox.model import LOCK, SEVERITY_ORDER, AppVersion, Application, EBState, Environment, now, rand, state_of


class InvalidParameterCombinationError(ServiceException):
    code = "InvalidParameterCombination"
from sandbox.options import DEFAULT_OPTIONS, REPLACING_OPTIONS, OptionKey, check_listeners, parse_options

PLATFORM_PAGE = 2

# Options DescribeConfigurationSettings reports against a resource of the environment's stack
# (EB-OPTIONS-RESOURCENAME); launch options belong to the launch template once one is in use.
ASG_RESOURCE = "AWSEBAutoScalingGroup"
LAUNCH_RESOURCE = {False: "AWSEBAutoScalingLaunchConfiguration", True: "AWSEBEC2LaunchTemplate"}
# Options that move an environment to a launch template for good (EB-LAUNCH-TEMPLATE).
LAUNCH_TEMPLATE_OPTIONS = {("aws:autoscaling:launchconfiguration", "DisableIMDSv1"),
                           ("aws:autoscaling:launchconfiguration", "RootVolumeType")}

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


def _platform(self: EBResponse) -> tuple[str, str]:
    return platforms.resolve(self.region, _p(self, "PlatformArn"), _p(self, "SolutionStackName"))


def _new_request(self: EBResponse) -> str:
    # Events carry the RequestId of the call that started the operation, as in AWS; the response gets the
    # same id through _enrich_response below.
    request_id = str(uuid.uuid4())
    self._sandbox_request_id = request_id
    return request_id


# --------------------------------------------------------------------------------------------------
# EBResponse methods


def create_storage_location(self: EBResponse) -> ActionResult:
    """elasticbeanstalk-REGION-ACCOUNT, created once (EB-STORAGE-BUCKET)."""
    state = state_of(self.elasticbeanstalk_backend)
    bucket = storage_bucket(state)
    s3 = s3_backend(state)
    with LOCK:
        if bucket not in s3.buckets:
            s3.create_bucket(bucket, state.region)
    return ActionResult({"S3Bucket": bucket})


def list_platform_versions(self: EBResponse) -> ActionResult:
    """The catalogue, through every filter given (EB-PLATFORM-FILTERS), in pages of at most two summaries
    whatever MaxRecords asks, so a caller that reads one page misses the rest (EB-PLATFORM-LIST-PAGINATED)."""
    filters = _p(self, "Filters", []) or []
    found = [s for s in platforms.platforms(self.region) if all(platforms.matches_filter(s, f) for f in filters)]
    size = min(int(_p(self, "MaxRecords") or PLATFORM_PAGE), PLATFORM_PAGE)
    offset = int(_p(self, "NextToken") or 0)
    result: dict[str, Any] = {"PlatformSummaryList": found[offset: offset + size]}
    if offset + size < len(found):
        result["NextToken"] = str(offset + size)
    return ActionResult(result)


def describe_platform_version(self: EBResponse) -> ActionResult:
    arn = _p(self, "PlatformArn")
    for summary in platforms.platforms(self.region):
        if summary["PlatformArn"] == arn:
            return ActionResult({"PlatformDescription": platforms.platform_description(summary)})
    raise InvalidParameterValueError(f"No Platform named '{arn}' found.")


def list_available_solution_stacks(self: EBResponse) -> ActionResult:
    descriptions = [platforms.platform_description(s) for s in platforms.platforms(self.region)]
    stacks = [d["SolutionStackName"] for d in descriptions]
    return ActionResult({"SolutionStacks": stacks,
                         "SolutionStackDetails": [{"SolutionStackName": s, "PermittedFileTypes": ["zip"]}
                                                  for s in stacks]})


def create_application(self: EBResponse) -> ActionResult:
    state = state_of(self.elasticbeanstalk_backend)
    name = _p(self, "ApplicationName")
    with LOCK:
        if name in state.applications:
            raise InvalidParameterValueError(f"Application {name} already exists.")
        app = Application(name=name, arn=state.arn("application", name), description=_p(self, "Description", ""),
                          tags=_tags(_p(self, "Tags")))
        state.applications[name] = app
        return ActionResult({"Application": app.describe(state)})


def describe_applications(self: EBResponse) -> ActionResult:
    state = state_of(self.elasticbeanstalk_backend)
    names = _p(self, "ApplicationNames") or []
    with LOCK:
        apps = [a.describe(state) for a in state.applications.values() if not names or a.name in names]
    return ActionResult({"Applications": apps})


def delete_application(self: EBResponse) -> ActionResult:
    """Refused while environments run, unless TerminateEnvByForce (EB-DELETE-IN-USE)."""
    state = state_of(self.elasticbeanstalk_backend)
    name = _p(self, "ApplicationName")
    with LOCK:
        state.app(name)
        running = [e for e in state.live_environments() if e.application == name]
        if running and not _as_bool(_p(self, "TerminateEnvByForce"), False):
            raise InvalidParameterValueError(
                f"Unable to delete application {name} because it has running environments: "
                + ", ".join(e.name for e in running))
        for env in running:
            env.stages = lifecycle.terminate_stages(state, env)
        del state.applications[name]
        for key in [k for k in state.versions if k[0] == name]:
            del state.versions[key]
    return EmptyResult()


def create_application_version(self: EBResponse) -> ActionResult:
    """The source bundle must already be in S3 (EB-APPVERSION-BUNDLE)."""
    state = state_of(self.elasticbeanstalk_backend)
    app_name, label = _p(self, "ApplicationName"), _p(self, "VersionLabel")
    bundle = _p(self, "SourceBundle") or {}
    with LOCK:
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
            found = s3_backend(state).get_object(bucket, key)
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
    state = state_of(self.elasticbeanstalk_backend)
    app_name, labels = _p(self, "ApplicationName"), _p(self, "VersionLabels") or []
    with LOCK:
        versions = sorted(state.versions.values(), key=lambda v: v.created, reverse=True)
        out = [v.describe() for v in versions
               if (not app_name or v.application == app_name) and (not labels or v.label in labels)]
    max_records = _p(self, "MaxRecords")
    if max_records:
        out = out[: int(max_records)]
    return ActionResult({"ApplicationVersions": out})


def delete_application_version(self: EBResponse) -> ActionResult:
    """Refused while an environment runs the version (EB-DELETE-IN-USE)."""
    state = state_of(self.elasticbeanstalk_backend)
    app_name, label = _p(self, "ApplicationName"), _p(self, "VersionLabel")
    with LOCK:
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
                s3_backend(state).delete_object(version.bucket, version.key)
            except Exception:
                pass
    return EmptyResult()


def check_dns_availability(self: EBResponse) -> ActionResult:
    """PREFIX.REGION.elasticbeanstalk.com, taken while a live environment has it (EB-CNAME-SUFFIX)."""
    state = state_of(self.elasticbeanstalk_backend)
    prefix = _p(self, "CNAMEPrefix")
    cname = f"{prefix}.{state.region}.elasticbeanstalk.com"
    with LOCK:
        taken = any(e.cname == cname for e in state.live_environments())
    return ActionResult({"Available": not taken, "FullyQualifiedCNAME": cname})


def create_environment(self: EBResponse) -> ActionResult:
    state = state_of(self.elasticbeanstalk_backend)
    request_id = _new_request(self)
    app_name, name = _p(self, "ApplicationName"), _p(self, "EnvironmentName")
    with LOCK:
        state.app(app_name)
        if not name or len(name) < 4 or len(name) > 40:
            raise InvalidParameterValueError(
                f"Value {name} at 'EnvironmentName' failed to satisfy constraint: length must be 4 to 40.")
        if any(e.name == name for e in state.live_environments()):
            raise InvalidParameterValueError(f"Environment {name} already exists.")
        platform_arn, stack = _platform(self)
        label = _p(self, "VersionLabel")
        if label and (app_name, label) not in state.versions:
            raise InvalidParameterValueError(f"No Application Version named '{label}' found.")
        options = parse_options(_p(self, "OptionSettings"))
        check_listeners(options)
        prefix = _p(self, "CNAMEPrefix")
        if prefix:
            cname = f"{prefix}.{state.region}.elasticbeanstalk.com"
            if any(e.cname == cname for e in state.live_environments()):
                raise InvalidParameterValueError(f"DNS name ({cname}) is not available.")
        else:
            cname = f"{name}.eba-{rand(8)}.{state.region}.elasticbeanstalk.com"
        env_id = "e-" + rand(10)
        lb = f"awseb-AWSEB-{rand(12, string.ascii_uppercase + string.digits)}"
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
            load_balancer=lb, request_id=request_id, launch_template=_moves_to_launch_template(options),
        )
        state.environments.append(env)
        state.emit(env, "INFO", "createEnvironment is starting.")
        env.stages = lifecycle.create_stages(state, env, state.take_failure(name) if label else None)
        return ActionResult(env.describe())


def describe_environments(self: EBResponse) -> ActionResult:
    """Every environment it returns is polled: its running operation advances a stage (EB-STATUS)."""
    state = state_of(self.elasticbeanstalk_backend)
    app_name, label = _p(self, "ApplicationName"), _p(self, "VersionLabel")
    ids, names = _p(self, "EnvironmentIds") or [], _p(self, "EnvironmentNames") or []
    include_deleted = _as_bool(_p(self, "IncludeDeleted"), True)
    deleted_back_to = _as_time(_p(self, "IncludedDeletedBackTo")) or (now() - timedelta(hours=1))
    with LOCK:
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
            if env.status == "Terminated" and (not include_deleted or (env.terminated_at or now()) < deleted_back_to):
                continue
            poll(state, env)
            out.append(env.describe())
    return ActionResult({"Environments": out})


def _moves_to_launch_template(options: dict[OptionKey, str]) -> bool:
    return any(value.lower() == "true" for (_, ns, opt), value in options.items()
               if (ns, opt) in LAUNCH_TEMPLATE_OPTIONS)


def update_environment(self: EBResponse) -> ActionResult:
    """Only from Ready; a new version and new settings in one call are refused (EB-UPDATE-VERSION-AND-OPTIONS);
    launch-configuration changes replace the instances (EB-CONFIG-REPLACES); while it runs, the old settings stay
    "deployed" next to the "pending" new ones (EB-OPTIONS-DRAFT)."""
    state = state_of(self.elasticbeanstalk_backend)
    request_id = _new_request(self)
    with LOCK:
        env = state.find_env(_p(self, "EnvironmentName"), _p(self, "EnvironmentId"))
        if env.status != "Ready" or env.busy:
            raise InvalidParameterValueError(
                f"Environment named {env.name} is in an invalid state for this operation. Must be Ready.")
        label = _p(self, "VersionLabel")
        if label and (env.application, label) not in state.versions:
            raise InvalidParameterValueError(f"No Application Version named '{label}' found.")
        changes = parse_options(_p(self, "OptionSettings"))
        if label and label != env.version_label and (changes or _p(self, "TemplateName")):
            raise InvalidParameterCombinationError(
                "Attempting to update both the release and configuration is not allowed.")
        removals = {(r.get("ResourceName") or "", r["Namespace"], r["OptionName"])
                    for r in _p(self, "OptionsToRemove") or []}
        new_options = {k: v for k, v in env.options.items() if k not in removals}
        new_options.update(changes)
        changed_keys = {k for k in set(env.options) | set(new_options)
                        if env.options.get(k) != new_options.get(k)}
        replace = any((ns, opt) in REPLACING_OPTIONS for _, ns, opt in changed_keys)
        resize = any(ns == "aws:autoscaling:asg" and opt == "MinSize" for _, ns, opt in changed_keys)
        check_listeners(new_options)
        env.deployed_options = dict(env.options) if changed_keys else None
        env.options = new_options
        env.launch_template = env.launch_template or _moves_to_launch_template(new_options)
        if _p(self, "Description") is not None:
            env.description = _p(self, "Description")
        if _p(self, "PlatformArn") or _p(self, "SolutionStackName"):
            env.platform_arn, env.solution_stack = _platform(self)
        env.request_id = request_id
        env.status = "Updating"
        state.emit(env, "INFO", "Environment update is starting.")
        failure = state.take_failure(env.name) if label and label != env.version_label else None
        env.stages = lifecycle.update_stages(state, env, label, replace, resize, failure)
        env.updated = now()
        return ActionResult(env.describe())


def terminate_environment(self: EBResponse) -> ActionResult:
    state = state_of(self.elasticbeanstalk_backend)
    request_id = _new_request(self)
    with LOCK:
        env = state.find_env(_p(self, "EnvironmentName"), _p(self, "EnvironmentId"))
        if env.status == "Terminating":
            raise InvalidParameterValueError(
                f"Environment named {env.name} is in an invalid state for this operation. Must be Ready.")
        env.request_id = request_id
        env.status = "Terminating"
        state.emit(env, "INFO", "terminateEnvironment is starting.")
        env.stages = lifecycle.terminate_stages(state, env)
        return ActionResult(env.describe())


def describe_events(self: EBResponse) -> ActionResult:
    """Newest first; StartTime inclusive, EndTime exclusive; NextToken paging (EB-EVENTS). A poll."""
    state = state_of(self.elasticbeanstalk_backend)
    app_name, env_name, env_id = _p(self, "ApplicationName"), _p(self, "EnvironmentName"), _p(self, "EnvironmentId")
    label, request_id = _p(self, "VersionLabel"), _p(self, "RequestId")
    severity = _p(self, "Severity")
    start, end = _as_time(_p(self, "StartTime")), _as_time(_p(self, "EndTime"))
    max_records = int(_p(self, "MaxRecords") or 1000)
    offset = int(_p(self, "NextToken") or 0)
    with LOCK:
        # Polling events for an environment advances it, like describe_environments.
        for env in state.environments:
            if env.status == "Terminated":
                continue
            if (env_name and env.name == env_name) or (env_id and env.id == env_id) or (
                    not env_name and not env_id and app_name and env.application == app_name):
                poll(state, env)
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
            if severity and SEVERITY_ORDER.index(ev.severity) < SEVERITY_ORDER.index(severity):
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
    state = state_of(self.elasticbeanstalk_backend)
    with LOCK:
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
    """Status, colour, causes and instance counts from the lifecycle (EB-HEALTH-STATUSES); only the environment's
    name unless AttributeNames asks for more (EB-HEALTH-CAUSES). A poll."""
    state = state_of(self.elasticbeanstalk_backend)
    wanted = set(_p(self, "AttributeNames") or [])
    with LOCK:
        env = state.find_env(_p(self, "EnvironmentName"), _p(self, "EnvironmentId"))
        poll(state, env)
        counts = {k: 0 for k in ("NoData", "Unknown", "Pending", "Ok", "Info", "Warning", "Degraded", "Severe")}
        bucket = env.health_status if env.health_status in counts else "NoData"
        counts[bucket] = len(env.instance_ids)
        causes = list(env.causes)
        if not causes and env.health == "Red":
            causes = ["Command failed on all instances."]
        elif not causes and env.status != "Ready":
            causes = [f"Environment is {env.status.lower()}."]
        result = {
            "EnvironmentName": env.name,
            "HealthStatus": env.health_status,
            "Status": env.status,
            "Color": env.health,
            "Causes": causes,
            "InstancesHealth": counts,
            "RefreshedAt": now(),
        }
    if "All" not in wanted:
        result = {k: v for k, v in result.items() if k == "EnvironmentName" or k in wanted}
    return ActionResult(result)


def describe_instances_health(self: EBResponse) -> ActionResult:
    state = state_of(self.elasticbeanstalk_backend)
    with LOCK:
        env = state.find_env(_p(self, "EnvironmentName"), _p(self, "EnvironmentId"))
        ec2 = ec2_backend(state)
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
    return ActionResult({"InstanceHealthList": found, "RefreshedAt": now()})


def describe_configuration_settings(self: EBResponse) -> ActionResult:
    """Options of the auto scaling group and launch template/configuration carry a ResourceName
    (EB-OPTIONS-RESOURCENAME); while an update runs, the "pending" draft comes first, then the "deployed" set
    (EB-OPTIONS-DRAFT)."""
    state = state_of(self.elasticbeanstalk_backend)
    app_name, env_name = _p(self, "ApplicationName"), _p(self, "EnvironmentName")
    if _p(self, "TemplateName"):
        raise InvalidParameterValueError("Configuration templates are not modelled by this emulator.")
    with LOCK:
        env = state.find_env(env_name)
        if env.application != app_name:
            raise InvalidParameterValueError(f"No Environment found for EnvironmentName = '{env_name}'.")
        described = [_settings_description(env, env.options, "deployed")]
        if env.busy and env.deployed_options is not None:
            described = [_settings_description(env, env.options, "pending"),
                         _settings_description(env, env.deployed_options, "deployed")]
    return ActionResult({"ConfigurationSettings": described})


def _settings_description(env: Environment, options: dict[OptionKey, str], status: str) -> dict[str, Any]:
    merged: dict[OptionKey, str] = {("", ns, opt): v for (ns, opt), v in DEFAULT_OPTIONS.items()}
    merged.update(options)
    if env.security_group_id:
        # As AWS shows it: the group EB created for the instances first, then the operator's.
        key = ("", "aws:autoscaling:launchconfiguration", "SecurityGroups")
        extra = [g for g in merged.get(key, "").split(",") if g.strip()]
        merged[key] = ",".join([env.security_group_id, *extra])
    settings = [
        {**({"ResourceName": r} if (r := resource or _resource_of(env, ns)) else {}),
         "Namespace": ns, "OptionName": opt, "Value": v}
        for (resource, ns, opt), v in sorted(merged.items())
    ]
    result = {
        "SolutionStackName": env.solution_stack,
        "PlatformArn": env.platform_arn,
        "ApplicationName": env.application,
        "EnvironmentName": env.name,
        "DeploymentStatus": status,
        "DateCreated": env.created,
        "DateUpdated": env.updated,
        "OptionSettings": settings,
    }
    if env.description:
        result["Description"] = env.description
    return result


def _resource_of(env: Environment, namespace: str) -> str:
    if namespace == "aws:autoscaling:asg":
        return ASG_RESOURCE
    if namespace == "aws:autoscaling:launchconfiguration":
        return LAUNCH_RESOURCE[env.launch_template]
    return ""


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
    raise ResourceNotFoundException(f"Resource not found for ARN '{arn}'.")


def list_tags_for_resource(self: EBResponse) -> ActionResult:
    state = state_of(self.elasticbeanstalk_backend)
    arn = _p(self, "ResourceArn")
    with LOCK:
        tags = _taggable(state, arn)
        return ActionResult({"ResourceArn": arn, "ResourceTags": [{"Key": k, "Value": v} for k, v in tags.items()]})


def update_tags_for_resource(self: EBResponse) -> ActionResult:
    state = state_of(self.elasticbeanstalk_backend)
    arn = _p(self, "ResourceArn")
    with LOCK:
        tags = _taggable(state, arn)
        tags.update(_tags(_p(self, "TagsToAdd")))
        for key in _p(self, "TagsToRemove") or []:
            tags.pop(key, None)
    return EmptyResult()


def _enrich_response(self: EBResponse, headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    # moto's own version replaces everything between the first <RequestId> and the last </RequestId>, which
    # destroys describe_events output (events carry a RequestId too). Replace only ResponseMetadata's, and use
    # the id our events carry when this call started an operation (as AWS does).
    if "status" in headers:
        headers["status"] = str(headers["status"])
    request_id = getattr(self, "_sandbox_request_id", None) or gen_amzn_requestid_long()
    headers["x-amzn-requestid"] = request_id
    if isinstance(body, str):
        body = re.sub(r"(<ResponseMetadata>\s*<RequestId>)[^<]*(</RequestId>)", rf"\g<1>{request_id}\g<2>", body)
    return headers, body


METHODS = [
    create_storage_location, list_platform_versions, describe_platform_version, list_available_solution_stacks,
    create_application, describe_applications, delete_application,
    create_application_version, describe_application_versions, delete_application_version,
    check_dns_availability, create_environment, describe_environments, update_environment, terminate_environment,
    describe_events, describe_environment_resources, describe_environment_health, describe_instances_health, describe_configuration_settings,
    list_tags_for_resource, update_tags_for_resource,
]


def install() -> None:
    """Put these methods on moto's EBResponse (in the serving process). Idempotent."""
    for method in METHODS:
        setattr(EBResponse, method.__name__, method)
    EBResponse._enrich_response = _enrich_response  # type: ignore[method-assign]
