"""IAM as the instances and the deploying identity meet it, evaluated with moto's own policy evaluator
(``moto.iam.access_control.IAMPolicy``, what moto uses to authorize signed requests), never a list of names.

- SimulatePrincipalPolicy (moto has no handler): a user's inline, attached and group policies, or a role's inline
  and attached policies, decide each action on each resource: an explicit Deny wins, then an Allow, else
  ``implicitDeny`` (IAM-SIMULATE). Context entries feed the policies' conditions.
- What an EB instance does with its instance profile when a version is deployed to it (IAM-INSTANCE-NEEDS):
  ``s3:GetObject`` on the version's source bundle (IAM-WEBTIER), ``ssm:GetParameter``/``ssm:GetParameters`` on
  each ``environmentsecrets`` ARN (IAM-ENVSECRETS-SSM; which of the two EB calls is not documented, so both are
  required), ``ecr:GetAuthorizationToken`` and ``ecr:BatchGetImage``/``ecr:GetDownloadUrlForLayer`` on the
  repository the bundle's Dockerrun.aws.json names (IAM-ECR-PULL), ``elasticbeanstalk:PutInstanceStatistics`` on
  the environment (IAM-HEALTH-STATS). A denied download, secret or pull fails the deployment with EB-style ERROR
  events naming the action and resource, health Red; denied statistics leave health at No Data (Grey).
- Pulling from another region's registry (ECR-CROSS-REGION) is UNSETTLED in AWS's documents; the sandbox models
  both answers, chosen with the control endpoint's ``cross_region_pull`` ("allowed", the default, or "refused").
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

from moto.core.responses import ActionResult
from moto.ecr.models import ecr_backends
from moto.elasticbeanstalk.models import eb_backends
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.iam.models import iam_backends
from moto.iam.responses import IamResponse
from moto.s3.models import s3_backends

from sandbox import ecr
from sandbox.model import EBState, Environment, Failure, Stage

SECRETS_NAMESPACE = "aws:elasticbeanstalk:application:environmentsecrets"
_ECR_HOST = re.compile(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com")


# -- policy evaluation ---------------------------------------------------------------------------------

def _principal_policies(backend: Any, arn: str) -> list[IAMPolicy]:
    """The identity policies of the user, group or role ``arn`` (raises moto's NoSuchEntity if unknown)."""
    kind, _, path = arn.split(":", 5)[-1].partition("/")
    name = path.rsplit("/", 1)[-1]
    documents: list[Any] = []
    if kind == "role":
        documents += [backend.get_role_policy(name, p)[1] for p in backend.list_role_policies(name)]
        documents += list(backend.list_attached_role_policies(name)[0])
        return [IAMPolicy(d) for d in documents]
    groups = [name] if kind == "group" else []
    if kind == "user":
        documents += [backend.get_user_policy(name, p) for p in backend.list_user_policies(name)]
        documents += list(backend.list_attached_user_policies(name)[0])
        groups = [g.name for g in backend.get_groups_for_user(name)]
    for group in groups:
        documents += [backend.get_group_policy(group, p) for p in backend.list_group_policies(group)]
        documents += list(backend.list_attached_group_policies(group)[0])
    return [IAMPolicy(d) for d in documents]


def decide(policies: list[IAMPolicy], action: str, resource: str, context: dict[str, str] | None = None) -> str:
    """IAM's decision for identity policies: explicitDeny, allowed or implicitDeny."""
    results = [p.is_action_permitted(action, resource, incoming_condition_values=context) for p in policies]
    if PermissionResult.DENIED in results:
        return "explicitDeny"
    return "allowed" if PermissionResult.PERMITTED in results else "implicitDeny"


def _members(querystring: dict[str, list[str]], prefix: str) -> list[str]:
    found = [(int(k[len(prefix):]), v[0]) for k, v in querystring.items()
             if k.startswith(prefix) and k[len(prefix):].isdigit()]
    return [v for _, v in sorted(found)]


def simulate_principal_policy(self: IamResponse) -> ActionResult:
    """SimulatePrincipalPolicy with moto's evaluator (IAM-SIMULATE); one page, never truncated."""
    policies = _principal_policies(self.backend, self._get_param("PolicySourceArn"))
    context = {}
    for i in range(1, 100):
        key = self.querystring.get(f"ContextEntries.member.{i}.ContextKeyName")
        if not key:
            break
        context[key[0]] = self.querystring.get(f"ContextEntries.member.{i}.ContextKeyValues.member.1", [""])[0]
    results = [{"EvalActionName": action, "EvalResourceName": resource,
                "EvalDecision": decide(policies, action, resource, context or None),
                "MatchedStatements": [], "MissingContextValues": []}
               for action in _members(self.querystring, "ActionNames.member.")
               for resource in _members(self.querystring, "ResourceArns.member.") or ["*"]]
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


# -- what the instances do ---------------------------------------------------------------------------

def cross_region_pull(account_id: str, region: str) -> str:
    return eb_backends[account_id][region].__dict__.get("_sandbox_cross_region_pull", "allowed")


def set_cross_region_pull(account_id: str, region: str, answer: str) -> None:
    if answer not in ("allowed", "refused"):
        raise ValueError(f"cross_region_pull must be 'allowed' or 'refused', not {answer!r}")
    eb_backends[account_id][region].__dict__["_sandbox_cross_region_pull"] = answer


def _image(state: EBState, bucket: str, key: str) -> str | None:
    """The image the bundle's Dockerrun.aws.json names, or None (no bundle, or not a Docker bundle)."""
    try:
        data = s3_backends[state.account_id]["aws"].get_object(bucket, key).value
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            return json.loads(bundle.read("Dockerrun.aws.json"))["Image"]["Name"]
    except Exception:
        return None


def _registry_region(state: EBState, host: str) -> str:
    """The region of the registry at ``host``: ECR's own name says it; a bound sandbox registry is looked up."""
    named = _ECR_HOST.fullmatch(host)
    if named:
        return named.group(2)
    for region in list(ecr_backends[state.account_id].keys()):
        bound = ecr.bound_registry(state.account_id, region)
        if bound and bound.host == host:
            return region
    return state.region


def _role_policies(state: EBState, env: Environment) -> tuple[str, list[IAMPolicy]] | None:
    profile_name = env.option("aws:autoscaling:launchconfiguration", "IamInstanceProfile")
    if not profile_name:
        return None  # no profile named: not modelled (the console's default profile is not emulated)
    backend = iam_backends[state.account_id]["aws"]
    try:
        roles = backend.get_instance_profile(profile_name).roles
    except Exception:
        return None  # a missing profile is the launch's problem (EB-LAUNCH-PREREQUISITES)
    if not roles:
        return profile_name, []
    return roles[0].name, _principal_policies(backend, roles[0].arn)


def access_problems(state: EBState, env: Environment, label: str | None) -> tuple[list[str], bool]:
    """What an instance of ``env`` cannot do with its instance profile when ``label`` is deployed to it:
    (ERROR messages for what fails the deployment, whether health statistics are refused)."""
    found = _role_policies(state, env)
    version = state.versions.get((env.application, label or ""))
    if found is None or version is None:
        return [], False
    role, policies = found
    instance = env.instance_ids[0] if env.instance_ids else "i-pending"
    who = f"(instance profile role {role})"
    problems = []

    def denied(action: str, resource: str) -> bool:
        return decide(policies, action, resource) != "allowed"

    bundle = f"arn:aws:s3:::{version.bucket}/{version.key}"
    if denied("s3:GetObject", bundle):
        problems.append(f"[Instance: {instance}] could not download the source bundle: AccessDenied "
                        f"s3:GetObject on {bundle} {who}")
    for (_, namespace, variable), arn in sorted(env.options.items()):
        if namespace != SECRETS_NAMESPACE:
            continue
        for action in ("ssm:GetParameter", "ssm:GetParameters"):
            if denied(action, arn):
                problems.append(f"[Instance: {instance}] could not fetch the environment secret {variable}: "
                                f"AccessDenied {action} on {arn} {who}")
    image = _image(state, version.bucket, version.key)
    if image and "/" in image:
        host, repository = image.split("/", 1)
        repository = repository.split("@", 1)[0].rsplit(":", 1)[0]
        region = _registry_region(state, host)
        repo_arn = f"arn:aws:ecr:{region}:{state.account_id}:repository/{repository}"
        for action, resource in (("ecr:GetAuthorizationToken", "*"), ("ecr:BatchGetImage", repo_arn),
                                 ("ecr:GetDownloadUrlForLayer", repo_arn)):
            if denied(action, resource):
                problems.append(f"[Instance: {instance}] could not pull the image {image}: AccessDenied "
                                f"{action} on {resource} {who}")
        if region != state.region and cross_region_pull(state.account_id, state.region) == "refused":
            problems.append(f"[Instance: {instance}] could not pull the image {image}: the registry is in "
                            f"{region}, the environment in {state.region} (ECR-CROSS-REGION, modelled as refused)")
    statistics = denied("elasticbeanstalk:PutInstanceStatistics", env.arn)
    return problems, statistics


def deploy_failure(state: EBState, env: Environment, label: str | None) -> Failure | None:
    """A failed deployment of ``label`` to the running instances, when they lack access (for an update)."""
    problems, _ = access_problems(state, env, label)
    return Failure(environment=env.name, message="; ".join(problems)) if problems else None


def failed_create(state: EBState, env: Environment) -> list[Stage] | None:
    """The rest of a creation whose instances lack access (IAM-INSTANCE-NEEDS), or None when they have it."""
    problems, statistics = access_problems(state, env, env.version_label)
    if problems:
        return [
            Stage(events=[("ERROR", "Instance deployment failed. For details, see 'eb-engine.log'."),
                          *[("ERROR", _literal(p)) for p in problems]],
                  health="Red", health_status="Severe"),
            Stage(events=[("ERROR", "Create environment operation is complete, but with errors. For more "
                                    "information, see troubleshooting documentation.")],
                  status="Ready", health="Red", health_status="Severe"),
        ]
    if statistics:
        return [Stage(events=[("INFO", "Instance deployment completed successfully."),
                              ("WARN", "Environment health has transitioned from Pending to No Data. None of the "
                                       "instances are sending data (elasticbeanstalk:PutInstanceStatistics "
                                       f"is denied on {_literal(env.arn)}).")],
                      status="Ready", health="Grey", health_status="NoData")]
    return None


def _literal(text: str) -> str:
    # Stage messages go through str.format; keep braces literal.
    return text.replace("{", "{{").replace("}", "}}")


def install() -> None:
    """Add SimulatePrincipalPolicy to moto's IAM (in the serving process). Idempotent."""
    IamResponse.simulate_principal_policy = simulate_principal_policy  # type: ignore[attr-defined]
