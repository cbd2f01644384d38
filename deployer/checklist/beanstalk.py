"""Elastic Beanstalk: seed steps 8 (application), 9 (environment, its CNAME and platform, the eb CLI's
configuration) and 14a (the load balancer's security group) before the bundle is rendered; 14b (application
version), 14c (create or update the environment) and 14d (wait for Ready, then Green) after it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from deployer import REPO_ROOT, names, render
from deployer.aws import eb, ec2, s3
from deployer.checklist.aws_calls import plain_aws_errors
from deployer.checklist.context import Context, EbRequest
from deployer.steps import Action, Check, ReadOnly, StepError

INSTANCE_SG_OPTION = ("aws:autoscaling:launchconfiguration", "SecurityGroups")


@dataclass
class EbApplication:
    """Seed step 8: the Elastic Beanstalk application (eb.application), created when missing."""

    number: int = 8
    name: str = "Elastic Beanstalk application"

    def check(self, ctx: Context) -> Check:
        app = ctx.settings.eb.application
        with plain_aws_errors():
            found = eb.find_application(ctx.aws().client("elasticbeanstalk"), app)
        if found:
            return Check.ok(f"{app} exists ({len(found.get('Versions', []))} version(s))")
        return Check.change(f"{app} is missing", Action("create", f"application {app}"))

    def apply(self, ctx: Context, check: Check) -> str | None:
        with plain_aws_errors():
            eb.create_application(ctx.aws().client("elasticbeanstalk"), ctx.settings.eb.application,
                                  "Sifu notebooks for Open edX", names.tags(ctx.settings))
        return f"created application {ctx.settings.eb.application}"


@dataclass
class EbEnvironment(ReadOnly):
    """Seed step 9: the environment (eb.environment) and its platform, Docker on Amazon Linux 2023,
    resolved once through list_platform_versions and pinned in the saved answers; and its CNAME, which the
    bundle's URLs name: an existing environment's own, or for a new one the name CheckDNSAvailability gives
    for our prefix (the environment is created with that prefix, so the URL is known before it exists)."""

    number: int = 9
    name: str = "Elastic Beanstalk environment"

    def check(self, ctx: Context) -> Check:
        s = ctx.settings
        client = ctx.aws().client("elasticbeanstalk")
        with plain_aws_errors():
            platform = s.eb.platform_arn or eb.docker_platform_arn(client)
            env = eb.find_environment(client, s.eb.application, s.eb.environment)
        ctx.facts.platform_arn = platform
        if not s.eb.platform_arn:
            ctx.facts.answers_to_save["eb.platform_arn"] = platform  # so the next run reuses it
        branch_version = platform.split("platform/", 1)[-1]
        if env:
            ctx.facts.cname = env["CNAME"]
            return Check.ok(f"{s.eb.environment}: {env['Status']}, health {env.get('Health')}, version "
                            f"{env.get('VersionLabel', '-')}, {env.get('CNAME', '')}; platform {branch_version}")
        prefix = names.cname_prefix(s)
        with plain_aws_errors():
            available, cname = eb.cname_availability(client, prefix)
        if not available:
            raise StepError(f"the CNAME {cname} is taken (CNAME prefix {prefix!r}): set eb.cname_prefix to another "
                            "prefix (4-63 lowercase letters, digits and dashes) for the new environment")
        ctx.facts.cname = cname
        return Check.ok(f"{s.eb.environment} does not exist yet: step 14c creates it on {branch_version} at {cname}")


@dataclass
class LoadBalancerGroup:
    """Seed step 14 (network): our security group for the load balancer, the listener ports open to anyone, the
    service ports admitted from it into our instances' group, and ports.peer admitted into that group from itself
    (an instance passes a request to the instance running the student's kernel; EC2-SG-SELF-SOURCE). EB's own
    load-balancer group exists in custom VPCs only, and nothing documents that EB opens extra listener ports, so
    we own both sides."""

    number: int | str = "14a"
    name: str = "Load balancer security group"

    def _ports(self, ctx: Context) -> list[int]:
        s = ctx.settings
        return [s.ports.sifu, s.ports.jupyter, 80] + ([443] if s.eb.certificate_arn else [])

    def _groups(self, ctx: Context) -> tuple[str, dict | None, dict | None]:
        client = ctx.aws().client("ec2")
        vpc = ec2.default_vpc_id(client)
        if not vpc:
            raise StepError(f"no default VPC in {ctx.settings.eb.region}: create one (`aws ec2 create-default-vpc`)")
        return (vpc, ec2.find_security_group(client, vpc, names.load_balancer_security_group(ctx.settings)),
                ec2.find_security_group(client, vpc, names.instances_security_group(ctx.settings)))

    def _missing(self, ctx: Context, lb: dict | None, instances: dict | None) -> list[Action]:
        s = ctx.settings
        lb_name, inst_name = names.load_balancer_security_group(s), names.instances_security_group(s)
        actions = [Action("create", f"security group {n}") for n, g in ((lb_name, lb), (inst_name, instances)) if g is None]
        actions += [Action("allow", f"{port}/tcp into {lb_name}", "from anywhere") for port in self._ports(ctx)
                    if lb is None or not ec2.admits_world(lb, port)]
        actions += [Action("allow", f"{port}/tcp into {inst_name}", f"from {lb_name}")
                    for port in (s.ports.sifu, s.ports.jupyter)
                    if lb is None or instances is None or not ec2.allows_from_group(instances, port, lb["GroupId"])]
        if instances is None or not ec2.allows_from_group(instances, s.ports.peer, instances["GroupId"]):
            actions.append(Action("allow", f"{s.ports.peer}/tcp into {inst_name}", f"from {inst_name}"))
        return actions

    def check(self, ctx: Context) -> Check:
        with plain_aws_errors():
            _, lb, instances = self._groups(ctx)
        if lb:
            ctx.facts.load_balancer_security_group = lb["GroupId"]
        actions = self._missing(ctx, lb, instances)
        if not actions:
            return Check.ok(f"{names.load_balancer_security_group(ctx.settings)} admits ports "
                            f"{', '.join(map(str, self._ports(ctx)))}; the instances admit the services from it "
                            f"and port {ctx.settings.ports.peer} from each other")
        return Check.change(f"{len(actions)} change(s) to the load balancer's access", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        s = ctx.settings
        client = ctx.aws().client("ec2")
        with plain_aws_errors():
            vpc, lb, instances = self._groups(ctx)
            if lb is None:
                ec2.create_security_group(client, vpc, names.load_balancer_security_group(s),
                                          "Sifu load balancer (listener ports from anywhere)", names.tags(s))
            if instances is None:
                ec2.create_security_group(client, vpc, names.instances_security_group(s), "Sifu Elastic Beanstalk "
                                          "instances (EFS and RDS admit traffic from this group only)", names.tags(s))
            _, lb, instances = self._groups(ctx)
            for port in self._ports(ctx):
                if not ec2.admits_world(lb, port):
                    ec2.allow_from_world(client, lb["GroupId"], port, "load balancer listener")
            for port in (s.ports.sifu, s.ports.jupyter):
                if not ec2.allows_from_group(instances, port, lb["GroupId"]):
                    ec2.allow_from_group(client, instances["GroupId"], port, lb["GroupId"], "load balancer")
            if not ec2.allows_from_group(instances, s.ports.peer, instances["GroupId"]):
                ec2.allow_from_group(client, instances["GroupId"], s.ports.peer, instances["GroupId"],
                                     "Jupyter between instances")
        ctx.facts.load_balancer_security_group = lb["GroupId"]
        ctx.facts.instance_security_group = instances["GroupId"]
        return f"{len(check.actions)} change(s): {', '.join(a.target for a in check.actions)}"


EB_CLI_CONFIG = ".elasticbeanstalk/config.yml"
EB_CLI_CONFIG_PATH = REPO_ROOT / EB_CLI_CONFIG  # where the eb CLI looks (the project directory)


@dataclass
class EbCliConfig:
    """Seed step 9 (EB CLI): write .elasticbeanstalk/config.yml (git-ignored) for `eb status/ssh/logs`."""

    number: int = 9
    name: str = "EB CLI configuration"

    def _wanted(self, ctx: Context) -> str:
        s = ctx.settings
        return render.render_template("eb-cli-config.yml.j2", {
            "environment": s.eb.environment, "application": s.eb.application, "key_name": s.eb.key_name,
            "platform": ctx.facts.platform_arn or s.eb.platform_arn, "region": s.eb.region,
            "profile": s.aws.profile})

    def path(self):
        return EB_CLI_CONFIG_PATH

    def check(self, ctx: Context) -> Check:
        path = self.path()
        if path.exists() and path.read_text() == self._wanted(ctx):
            return Check.ok(f"{EB_CLI_CONFIG} names {ctx.settings.eb.application}/{ctx.settings.eb.environment}")
        return Check.change(f"{EB_CLI_CONFIG} {'differs' if path.exists() else 'missing'}",
                            Action("write", EB_CLI_CONFIG, "for eb status/ssh/logs"))

    def apply(self, ctx: Context, check: Check) -> str | None:
        path = self.path()
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self._wanted(ctx))
        os.replace(tmp, path)
        return f"wrote {EB_CLI_CONFIG}"


@dataclass
class ApplicationVersion:
    """Seed step 14: upload the bundle to EB's storage bucket and register it; the label is its content hash."""

    number: int | str = "14b"
    name: str = "Application version"

    def check(self, ctx: Context) -> Check:
        built = ctx.facts.bundle
        if built is None:
            raise StepError("no bundle was rendered (step 13 must run before this one)")
        if not ctx.facts.image_uri and not ctx.dry_run:
            raise StepError("no image to deploy: steps 6 and 7 (build, push) have not produced one, so the bundle "
                            "would name no tested image; nothing was uploaded to Elastic Beanstalk")
        s = ctx.settings
        aws = ctx.aws()
        account = ctx.facts.account_id or "unknown"
        bucket = eb.storage_bucket(s.eb.region, account)
        key = names.bundle_key(ctx.settings, built.version_label)
        with plain_aws_errors():
            version = eb.find_application_version(aws.client("elasticbeanstalk"), s.eb.application,
                                                  built.version_label)
            uploaded = s3.object_exists(aws.client("s3"), bucket, key) if version is None else True
        ctx.facts.version_label = built.version_label
        if version:
            return Check.ok(f"{built.version_label} registered")
        actions = []
        if not uploaded:
            actions.append(Action("upload", f"s3://{bucket}/{key}", f"{len(built.data)} bytes"))
        actions.append(Action("create", f"application version {built.version_label}"))
        return Check.change(f"new version {built.version_label}", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        built = ctx.facts.bundle
        aws = ctx.aws()
        key = names.bundle_key(ctx.settings, built.version_label)
        with plain_aws_errors():
            bucket = eb.create_storage_location(aws.client("elasticbeanstalk"))  # idempotent, returns the bucket
            uploaded = s3.upload_bundle(aws.client("s3"), bucket, key, built.data)
            eb.create_application_version(aws.client("elasticbeanstalk"), ctx.settings.eb.application,
                                          built.version_label, bucket, key, "Sifu notebooks bundle")
        return f"{'uploaded and ' if uploaded else ''}registered {built.version_label}"


def desired_options(ctx: Context) -> dict[tuple[str, str], str]:
    """The environment's option settings as step 13 rendered them (our instances' security group included)."""
    tree = ctx.facts.render_tree
    if tree is None:
        raise StepError("no option settings were rendered (step 13 must run before this one)")
    return {(o["Namespace"], o["OptionName"]): o["Value"] for o in render.option_settings(tree)}


@dataclass
class DeployEnvironment:
    """Seed step 14: create the environment (with our CNAME prefix), or update it with only what differs (version,
    settings); a new version with new settings is two updates, settings first, since EB refuses both at once."""

    number: int | str = "14c"
    name: str = "Create or update the environment"

    def check(self, ctx: Context) -> Check:
        s = ctx.settings
        label = ctx.facts.version_label
        if not label:
            raise StepError("no application version (step 14b must run before this one)")
        options = desired_options(ctx)
        client = ctx.aws().client("elasticbeanstalk")
        with plain_aws_errors():
            env = eb.find_environment(client, s.eb.application, s.eb.environment)
            current = eb.current_options(client, s.eb.application, s.eb.environment) if env else {}
        if env is None:
            return Check.change(f"create {s.eb.environment}", Action(
                "create", f"environment {s.eb.environment}", f"version {label}, {len(options)} option settings"))
        if env["Status"] not in ("Ready",):
            # A previous run was interrupted while EB worked; 14d waits for it, the next run updates.
            return Check.ok(f"{s.eb.environment} is {env['Status']}: step 14d waits for it; run the deploy "
                            "again afterwards if this step reports changes then")
        changes = eb.option_changes(current, options)
        actions = [Action("set", f"{ns} {name}", value if "environmentsecrets" not in ns else "(secret reference)")
                   for (ns, name), value in sorted(changes.items())]
        if env.get("VersionLabel") != label:
            actions.insert(0, Action("deploy", f"version {label}", f"replacing {env.get('VersionLabel', '-')}"))
        if not actions:
            return Check.ok(f"{s.eb.environment} runs {label} with the wanted settings")
        ctx.facts.option_changes = changes
        return Check.change(f"update {s.eb.environment}", *actions)

    def apply(self, ctx: Context, check: Check) -> str | None:
        s = ctx.settings
        label = ctx.facts.version_label
        client = ctx.aws().client("elasticbeanstalk")
        created = any(a.verb == "create" for a in check.actions)
        deploy = any(a.verb == "deploy" for a in check.actions)
        with plain_aws_errors():
            # Events after this instant (and carrying our request id) belong to this deployment.
            since = eb.latest_event_time(client, s.eb.environment)
            if created:
                found = eb.create_environment(client, s.eb.application, s.eb.environment, ctx.facts.platform_arn,
                                              label, desired_options(ctx), names.cname_prefix(s), names.tags(s))
            elif deploy and ctx.facts.option_changes:
                # EB refuses a new version and new settings in one call (InvalidParameterCombination): settings
                # first, then, once Ready again, the version.
                found = eb.update_environment(client, s.eb.environment, options=ctx.facts.option_changes)
                _wait(ctx, client, _request(found, since), expect_version=None)
                since = eb.latest_event_time(client, s.eb.environment)
                found = eb.update_environment(client, s.eb.environment, version_label=label)
            else:
                found = eb.update_environment(client, s.eb.environment, version_label=label if deploy else None,
                                              options=ctx.facts.option_changes or None)
        ctx.facts.eb_request = _request(found, since)
        return f"{'created' if created else 'updated'} {s.eb.environment}"


def _request(response: dict, since: datetime | None) -> EbRequest:
    return EbRequest(response["ResponseMetadata"]["RequestId"], since or datetime(1970, 1, 1, tzinfo=UTC))


def _wait(ctx: Context, client, request: EbRequest | None, expect_version: str | None) -> eb.WaitResult:
    """Wait for Ready, then Green, streaming EB's events; the time slept counts as waiting, not work."""
    s = ctx.settings

    def show(event: dict) -> None:
        ctx.emit(f"    {event['EventDate']:%H:%M:%S} {event['Severity']:<5} {event['Message']}")

    result = eb.wait_for_environment(
        client, s.eb.environment, request.since if request else datetime.now(UTC), show,
        expect_version=expect_version, request_id=request.request_id if request else None,
        timeout=s.eb.wait_timeout, health_grace=s.eb.health_grace, interval=s.eb.poll_interval, sleep=ctx.sleep)
    ctx.counters.waited_seconds += result.waited_seconds
    return result


@dataclass
class WaitReady:
    """Seed step 14: wait for Ready while streaming EB's events; then require our version, and Green health within
    eb.health_grace (Red, or the grace over, fails with EB's causes)."""

    number: int | str = "14d"
    name: str = "Wait for Ready"

    def check(self, ctx: Context) -> Check:
        s = ctx.settings
        if ctx.facts.eb_request:
            return Check.change("waiting for the request just made", Action("wait", f"{s.eb.environment} Ready"))
        with plain_aws_errors():
            env = eb.find_environment(ctx.aws().client("elasticbeanstalk"), s.eb.application, s.eb.environment)
        if env is None:
            return Check.ok("no environment yet") if ctx.dry_run else Check.change(
                "environment missing", Action("wait", s.eb.environment))
        if env["Status"] != "Ready":
            return Check.change(f"{s.eb.environment} is {env['Status']}", Action("wait", f"{s.eb.environment} Ready"))
        if env.get("Health") != "Green":
            # Ready comes before Green: wait for it (up to eb.health_grace), or fail with EB's causes.
            return Check.change(f"{s.eb.environment} is Ready, health {env.get('Health')}",
                                Action("wait", f"{s.eb.environment} Green"))
        return Check.ok(f"{s.eb.environment} Ready and Green, version {env.get('VersionLabel')}")

    def apply(self, ctx: Context, check: Check) -> str | None:
        s = ctx.settings
        if not ctx.wait:
            return "not waiting (--no-wait): follow it with `inv status`"
        client = ctx.aws().client("elasticbeanstalk")
        with plain_aws_errors():
            result = _wait(ctx, client, ctx.facts.eb_request, ctx.facts.version_label or None)
        env = result.environment
        return f"{s.eb.environment} Ready, {env.get('Health')}, version {env.get('VersionLabel')}: http://{env.get('CNAME')}"
