"""The sandbox's control endpoint, ``POST /moto-api/sandbox/control``: what a test or ``inv sandbox`` sets that
AWS has no API for. GET (or an empty POST) shows the pending settings.

POST body (JSON), every key optional::

    {"account_id": "123456789012", "region": "us-east-1",
     "fail_next_deploy": {"environment_name": "name, or null for any", "message": "why"},
     "polls_per_stage": 1,                          # describe calls each lifecycle stage takes
     "health_lag_polls": 3,                         # polls health stays Grey/Pending after Ready (EB-HEALTH-LAG)
     "degrade_health": {"environment_name": "name, or null for any", "causes": ["why", ...]},  # next Ready: Red
     "instance_addresses": ["10.232.0.11", ...],    # public IPs for the instances EB launches next, in order
     "registry": {"endpoint": "http://127.0.0.1:PORT", "username": "AWS", "password": "..."},  # ECR's registry
     "cross_region_pull": "allowed" or "refused",   # may instances pull from another region's ECR (sandbox/iam.py)
     "fleet": {"prefix", "subnet", "workdir", "public_key", "endpoint", "registry"} or null}
                                                    # run hosts for the instances (sandbox/fleet.py); null stops them

Everything set here lives on moto's backends, so ``POST /moto-api/reset`` forgets it.
"""

from __future__ import annotations

import json
from typing import Any

from moto.elasticbeanstalk.models import eb_backends
from moto.moto_api._internal import urls as moto_api_urls

from sandbox import ecr, iam
from sandbox import fleet as hosts
from sandbox.model import LOCK, Failure, HealthFault, state_of

PATH = "/moto-api/sandbox/control"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"


def control(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """moto-api handler (moto calls it with the Werkzeug request)."""
    body = request.get_data(as_text=True) if hasattr(request, "get_data") else ""
    params = json.loads(body) if body else {}
    account = params.get("account_id", DEFAULT_ACCOUNT)
    region = params.get("region", DEFAULT_REGION)
    state = state_of(eb_backends[account][region])
    with LOCK:
        if request.method == "POST":
            fail = params.get("fail_next_deploy")
            if fail is not None:
                state.failures.append(Failure(environment=fail.get("environment_name"),
                                              message=fail.get("message") or "Injected deployment failure"))
            if "polls_per_stage" in params:
                state.polls_per_stage = max(1, int(params["polls_per_stage"]))
            if "health_lag_polls" in params:
                state.health_lag_polls = max(0, int(params["health_lag_polls"]))
            degrade = params.get("degrade_health")
            if degrade is not None:
                state.health_faults.append(HealthFault(environment=degrade.get("environment_name"),
                                                       causes=list(degrade.get("causes") or ["Injected health fault"])))
            if "instance_addresses" in params:
                state.address_pool = [str(a) for a in params["instance_addresses"]]
                state.pooled = set(state.address_pool)
            if "registry" in params:
                ecr.bind_registry(account, region, params["registry"])
            if "cross_region_pull" in params:
                iam.set_cross_region_pull(account, region, params["cross_region_pull"])
            if "fleet" in params:
                if params["fleet"]:
                    hosts.start(hosts.FleetConfig.from_json(params["fleet"]))
                else:
                    hosts.stop()
        bound = ecr.bound_registry(account, region)
        out = {"failures": [f.__dict__ for f in state.failures], "polls_per_stage": state.polls_per_stage,
               "health_lag_polls": state.health_lag_polls,
               "instance_addresses": state.address_pool, "registry": bound.endpoint if bound else None,
               "cross_region_pull": iam.cross_region_pull(account, region),
               "fleet": hosts.current().config.__dict__ if hosts.current() else None}
    return 200, {"Content-Type": "application/json"}, json.dumps(out)


def install() -> None:
    """Register the endpoint with moto's own moto-api URLs (in the serving process). Idempotent."""
    moto_api_urls.url_paths["{0}" + PATH] = control
