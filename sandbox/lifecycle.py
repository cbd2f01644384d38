"""The Elastic Beanstalk lifecycle: operations as lists of stages that polls advance, and the EC2 work they do.

An operation (create, update, terminate) is a list of ``Stage``s. Every describe call that covers an environment
is a poll, and a poll runs the next stage: its action (launch or replace instances in moto's EC2), its events, its
status and health. So Launching -> Ready, Updating -> Ready and Terminating -> Terminated each take several polls,
as in AWS, without depending on wall time (EB-STATUS, EB-EVENTS). An injected failure (control endpoint)
makes the next deployment fail with ERROR events and, for an update, roll back to the previous version
(EB-DEPLOY-FAILURE-ROLLBACK). Instances carry the ``elasticbeanstalk:environment-name`` tag and sit in a security
group made for the environment (EB-INSTANCE-TAGS). Health goes Grey -> Green, or Red on a failure
(EB-HEALTH-STATUSES); Green comes some polls after Ready, not with it (EB-HEALTH-LAG), and an injected health fault
turns it Red/Severe with causes instead (EB-HEALTH-CAUSES).
"""

from __future__ import annotations

import string
from typing import Any

from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.s3.models import s3_backends

from sandbox import fleet as hosts
from sandbox import iam as instance_access
from sandbox.model import EBState, Environment, Failure, Stage, now, rand
from sandbox.options import DEFAULT_OPTIONS


def storage_bucket(state: EBState) -> str:
    """The bucket CreateStorageLocation makes: elasticbeanstalk-REGION-ACCOUNT (EB-STORAGE-BUCKET)."""
    return f"elasticbeanstalk-{state.region}-{state.account_id}"


# moto's other services, reached in-process (the same server answers their APIs).
def ec2_backend(state: EBState) -> Any:
    return ec2_backends[state.account_id][state.region]


def s3_backend(state: EBState) -> Any:
    return s3_backends[state.account_id]["aws"]


def _iam_backend(state: EBState) -> Any:
    return iam_backends[state.account_id]["aws"]


def _ensure_security_group(state: EBState, env: Environment) -> str:
    ec2 = ec2_backend(state)
    if env.security_group_id:
        return env.security_group_id
    vpc_id = env.option("aws:ec2:vpc", "VPCId") or ec2.get_default_vpc().id
    name = f"awseb-{env.id}-stack-AWSEBSecurityGroup-{rand(12, string.ascii_uppercase + string.digits)}"
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
    ec2 = ec2_backend(state)
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
    return DEFAULT_OPTIONS[("aws:autoscaling:launchconfiguration", "InstanceType")]


def _launch_problem(state: EBState, env: Environment) -> str | None:
    """What AWS would refuse when launching instances for ``env``: a missing instance profile, key pair or security
    group (EB-LAUNCH-PREREQUISITES)."""
    profile = env.option("aws:autoscaling:launchconfiguration", "IamInstanceProfile")
    if profile:
        try:
            _iam_backend(state).get_instance_profile(profile)
        except Exception:
            return f"The instance profile {profile} associated with the environment does not exist."
    key = env.option("aws:autoscaling:launchconfiguration", "EC2KeyName")
    if key and key not in ec2_backend(state).key_pairs:
        return (f"Creating Auto Scaling launch configuration failed Reason: The key pair '{key}' does not "
                "exist")
    for group in env.option("aws:autoscaling:launchconfiguration", "SecurityGroups").split(","):
        if group.strip() and ec2_backend(state).get_security_group_by_name_or_id(group.strip()) is None:
            return (f"Creating Auto Scaling launch configuration failed Reason: The security group "
                    f"'{group.strip()}' does not exist")
    return None


def _launch_instances(state: EBState, env: Environment, count: int) -> list[str]:
    ec2 = ec2_backend(state)
    sg_id = _ensure_security_group(state, env)
    subnets = _subnets(state, env)
    image_id = next(iter(ec2.amis), "ami-12c6146b")
    asg_name = f"awseb-{env.id}-stack-AWSEBAutoScalingGroup-{env.id[2:].upper()}"
    key = env.option("aws:autoscaling:launchconfiguration", "EC2KeyName") or None
    # Extra security groups (names or ids) attached to the instances, as AWS does with this option.
    extra = [g.strip() for g in env.option("aws:autoscaling:launchconfiguration", "SecurityGroups").split(",")
             if g.strip()]
    extra_ids = [g if g.startswith("sg-") else ec2.get_security_group_by_name_or_id(g).id for g in extra]
    fleet = hosts.current()
    if fleet is not None and count:
        role = _instance_role(state, env)
        fleet.watch(env.id, lambda: heal(state, env))
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
            if fleet is not None:
                inst.nics[0].public_ip = fleet.address()
                fleet.launch(inst.id, inst.nics[0].public_ip, role, state.region, lambda: stand_in_names(state))
            elif state.address_pool:
                inst.nics[0].public_ip = state.address_pool.pop(0)
        new_ids.extend(inst.id for inst in reservation.instances)
    env.instance_ids.extend(new_ids)
    return new_ids


def _terminate_instances(state: EBState, env: Environment, ids: list[str]) -> None:
    fleet = hosts.current()
    if fleet is not None:
        fleet.terminate(ids)
    if ids:
        ec2 = ec2_backend(state)
        for inst in ec2.get_multi_instances_by_id(ids):
            # A pooled address goes back to the pool, for the replacement instance.
            if inst.public_ip and inst.public_ip not in state.address_pool and inst.public_ip in state.pooled:
                state.address_pool.append(inst.public_ip)
        ec2.terminate_instances(ids)
    env.instance_ids = [i for i in env.instance_ids if i not in ids]


def _desired_count(env: Environment) -> int:
    return max(1, int(env.option("aws:autoscaling:asg", "MinSize") or 1))


# --------------------------------------------------------------------------------------------------
# Operations as stage lists: create, update (configuration and/or version), terminate


def create_stages(state: EBState, env: Environment, failure: Failure | None) -> list[Stage]:
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
        refused = None if failure else instance_access.failed_create(state, env)
        if refused or failure or hosts.current() is None or not env.version_label:
            env.stages[:] = refused or _finish_create(env, failure)
        else:
            env.stages[:] = _on_hosts(state, env, env.version_label, "deploy", None,
                                      lambda failed: _finish_create(env, failed))
        return None

    return [
        Stage(events=[("INFO", f"Using {storage_bucket(state)} as Amazon S3 storage bucket for environment data.")]),
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


def update_stages(state: EBState, env: Environment, new_label: str | None, replace: bool, resize: bool,
                   failure: Failure | None) -> list[Stage]:
    previous = env.version_label
    failure = failure or (instance_access.deploy_failure(state, env, new_label) if new_label else None)
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
            if added and hosts.current() is not None and env.version_label:
                env.stages[:0] = _on_hosts(state, env, env.version_label, "deploy", added, lambda failed: (
                    [] if failed is None else _configured(failed)))
            msgs = [("INFO", f"Added instance [{i}] to your environment.") for i in added]
            msgs += [("INFO", f"Removed instance [{i}] from your environment.")
                     for i in old if i not in env.instance_ids]
            return Stage(events=msgs)

        stages.append(Stage(events=[("INFO", "Updating environment {env.name}'s configuration settings.")],
                            action=reconfigure))
    if new_label and new_label != previous:
        stages.append(Stage(events=[("INFO", "Deploying new version to instance(s).")]))
        if not failure and hosts.current() is not None:
            stages += _on_hosts(state, env, new_label, "deploy", None,
                                lambda failed: _deployed(state, env, new_label, previous, failed))
            return stages
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
    elif hosts.current() is not None and not (replace or resize) and env.version_label:
        # A settings-only update: the instances run their confighooks with the new environment.
        stages += _on_hosts(state, env, env.version_label, "configure", None,
                            lambda failed: _configured(failed))
        return stages
    stages.append(_update_completed())
    return stages


def _update_completed() -> Stage:
    return Stage(events=[("INFO", "Environment update completed successfully.")],
                 status="Ready", health="Green", health_status="Ok")


# --------------------------------------------------------------------------------------------------
# Work on the sandbox's hosts (when it runs a fleet: sandbox/fleet.py)


def _instance_role(state: EBState, env: Environment) -> str:
    """The ARN of the role in the environment's instance profile ("" without one)."""
    profile = env.option("aws:autoscaling:launchconfiguration", "IamInstanceProfile")
    try:
        roles = _iam_backend(state).get_instance_profile(profile).roles if profile else []
    except Exception:  # a missing profile is the launch's problem (EB-LAUNCH-PREREQUISITES)
        return ""
    return roles[0].arn if roles else ""


def _view(state: EBState, env: Environment, label: str | None, ids: list[str] | None) -> hosts.EnvironmentView:
    version = state.versions.get((env.application, label or ""))
    options = {("", ns, opt): value for (ns, opt), value in DEFAULT_OPTIONS.items()}
    options.update(env.options)
    return hosts.EnvironmentView(
        id=env.id, name=env.name, cname=env.cname, region=state.region, options=options,
        instance_ids=list(env.instance_ids), deploy_to=list(ids if ids is not None else env.instance_ids),
        bucket=version.bucket if version else "", key=version.key if version else "", label=label or "",
        role=_instance_role(state, env))


def _rolling(env: Environment) -> bool:
    return env.option("aws:elasticbeanstalk:command", "DeploymentPolicy") in ("Rolling", "RollingWithAdditionalBatch")


def _on_hosts(state: EBState, env: Environment, label: str | None, mode: str, ids: list[str] | None,
              then: Any) -> list[Stage]:
    """Stages that run the platform engine (``mode`` deploy or configure) on the hosts, then continue with
    ``then(failure or None)``'s stages. Polls wait while the hosts work."""
    fleet = hosts.current()
    job: dict[str, hosts.Rollout] = {}

    def start(env: Environment) -> None:
        job["rollout"] = fleet.rollout(_view(state, env, label, ids), mode, one_at_a_time=_rolling(env))

    def finish(env: Environment) -> None:
        failed = job["rollout"].failures()
        failure = Failure(env.name, "; ".join(f"[Instance: {o.instance_id}] {o.message}" for o in failed)) \
            if failed else None
        env.stages[:0] = then(failure)

    return [Stage(action=start), Stage(until=lambda e: "rollout" in job and job["rollout"].done(), action=finish)]


def _deployed(state: EBState, env: Environment, label: str, previous: str | None,
              failure: Failure | None) -> list[Stage]:
    if failure is None:
        return [Stage(events=[("INFO", "Instance deployment completed successfully."),
                              ("INFO", "New application version was deployed to running EC2 instances.")],
                      action=lambda e: setattr(e, "version_label", label)),
                _update_completed()]
    failed = [Stage(events=[("ERROR", "Instance deployment failed. For details, see 'eb-engine.log'."),
                            ("ERROR", "Command failed on instance. Return code: 1 Output: "
                                      + _escape(failure.message) + "."),
                            ("WARN", "Environment health has transitioned from Ok to Degraded. Command failed "
                                     "on all instances.")],
                    health="Red", health_status="Degraded")]
    if not previous:
        return failed + [Stage(events=[("INFO", "No previous application version to roll back to."),
                                       ("ERROR", "Failed to deploy application.")],
                               status="Ready", health="Red", health_status="Severe")]
    return failed + [Stage(events=[("INFO", f"Rolling back to previous application version '{previous}'.")])] \
        + _on_hosts(state, env, previous, "deploy", None, lambda _: [
            Stage(events=[("ERROR", "Failed to deploy application."),
                          ("INFO", "Environment health has transitioned from Degraded to Ok.")],
                  status="Ready", health="Green", health_status="Ok")])


def _configured(failure: Failure | None) -> list[Stage]:
    if failure is None:
        return [_update_completed()]
    return [Stage(events=[("ERROR", "Command failed on instance. Return code: 1 Output: "
                                    + _escape(failure.message) + "."),
                          ("ERROR", "Failed to deploy configuration.")],
                  status="Ready", health="Red", health_status="Degraded")]


def heal(state: EBState, env: Environment) -> None:
    """Auto Scaling: a host that died is replaced by a new instance deployed through the bundle alone, which then
    joins the load balancer (EB-ASG-REPLACE). The fleet's watcher calls this under the emulator's lock."""
    fleet = hosts.current()
    if fleet is None or env.status != "Ready" or env.busy or env.terminated_at:
        return
    healing = fleet.healing.get(env.id)
    if healing is not None:
        if healing.done():
            del fleet.healing[env.id]
            if healing.failures():
                env.health, env.health_status = "Red", "Severe"
                env.causes = [f"[Instance: {o.instance_id}] {o.message}" for o in healing.failures()]
                state.emit(env, "ERROR", "Instance deployment failed. For details, see 'eb-engine.log'.")
            else:
                env.health, env.health_status, env.causes = "Green", "Ok", []
                state.emit(env, "INFO", "Environment health has transitioned from Warning to Ok.")
        return
    dead = fleet.dead(env.instance_ids)
    if not dead:
        return
    total = len(env.instance_ids)
    _terminate_instances(state, env, dead)
    added = _launch_instances(state, env, len(dead))
    env.health, env.health_status = "Yellow", "Warning"
    env.causes = [f"{len(dead)} out of {total} instances are impaired; Auto Scaling is replacing them."]
    state.emit(env, "WARN", f"Environment health has transitioned from Ok to Warning. {env.causes[0]}")
    for old, new in zip(dead, added):
        state.emit(env, "INFO", f"Removed instance [{old}] from your environment.")
        state.emit(env, "INFO", f"Added instance [{new}] to your environment.")
    fleet.healing[env.id] = fleet.rollout(_view(state, env, env.version_label, added), "deploy",
                                          one_at_a_time=False)


def stand_in_names(state: EBState) -> dict[str, str]:
    """Names the VPC's resolver gives the instances: EFS file systems and RDS endpoints -> their stand-ins."""
    fleet = hosts.current()
    return fleet.stand_in_names(state.account_id, state.region) if fleet is not None else {}


def terminate_stages(state: EBState, env: Environment) -> list[Stage]:
    def remove(env: Environment) -> None:
        fleet = hosts.current()
        if fleet is not None:
            fleet.unwatch(env.id)
        _terminate_instances(state, env, list(env.instance_ids))
        if env.security_group_id:
            try:
                ec2_backend(state).delete_security_group(group_id=env.security_group_id)
            except Exception:  # still referenced (e.g. by an EFS rule the operator added): AWS leaves it too
                pass

    def done(env: Environment) -> None:
        env.terminated_at = now()

    return [
        Stage(events=[("INFO", "Waiting for EC2 instances to terminate. This may take a few minutes.")],
              action=remove),
        Stage(events=[("INFO", "Deleted security group named: {env.security_group_id}")]),
        Stage(events=[("INFO", "terminateEnvironment completed successfully.")], action=done,
              status="Terminated", health="Grey", health_status="Unknown"),
    ]


# --------------------------------------------------------------------------------------------------
# Polls drive the stages


def poll(state: EBState, env: Environment) -> None:
    """A describe call looked at ``env``: advance its running operation by one stage, or its health lag."""
    if not env.stages:
        _settle_health(env)
        return
    env.polls += 1
    if env.polls < state.polls_per_stage:
        return
    env.polls = 0
    if env.stages[0].until and not env.stages[0].until(env):
        return
    stage = env.stages.pop(0)
    _run_stage(state, env, stage)


def _run_stage(state: EBState, env: Environment, stage: Stage) -> None:
    if stage.action:
        extra = stage.action(env)
        if isinstance(extra, Stage):  # an action may decide the operation's outcome
            env.stages[:0] = [extra] if extra.events or extra.status else []
    for severity, message in stage.events:
        state.emit(env, severity, message.format(env=env, state=state))
    if stage.status:
        env.status = stage.status
    if stage.health:
        env.health, env.causes = stage.health, []
    if stage.health_status:
        env.health_status = stage.health_status
    if stage.status == "Ready" and stage.health == "Green":
        _lag_health(state, env)
    env.updated = now()


def _lag_health(state: EBState, env: Environment) -> None:
    """Ready, but health is still Pending: it turns Green (or Red, when a fault was injected) later."""
    fault = state.take_health_fault(env.name)
    env.health_target = ("Red", "Severe", fault.causes) if fault else ("Green", "Ok", [])
    env.health_lag = state.health_lag_polls
    env.health, env.health_status, env.causes = "Grey", "Pending", ["Initialization in progress."]
    _settle_health(env, polled=False)


def _settle_health(env: Environment, polled: bool = True) -> None:
    if env.health_target is None:
        return
    if polled:
        env.health_lag -= 1
    if env.health_lag <= 0:
        env.health, env.health_status, env.causes = env.health_target
        env.health_target = None
