"""ECR's registry endpoint in moto's server: GetAuthorizationToken and repository URIs name a real registry.

moto's ECR keeps repositories and images as records but has no registry behind them, and its
GetAuthorizationToken expired in 2015. Here, once a registry is bound to an account and region (control
endpoint ``registry``; sandbox/registry.py starts one), ECR answers as AWS does for that registry:

- GetAuthorizationToken: ``proxyEndpoint`` is the registry's URL and ``authorizationToken`` is
  base64("AWS:<password>") for its htpasswd user ``AWS``; ``expiresAt`` is 12 hours ahead (ECR-AUTH-TOKEN);
- a repository's ``repositoryUri`` is ``<registry host>/<name>``, the host of ``proxyEndpoint``, as it is in AWS
  (ECR-REPOSITORY-URI).

Unbound, the answers keep moto's AWS-shaped endpoint (nothing listens there) with the same 12-hour expiry. The
binding lives on moto's ECR backend, so ``POST /moto-api/reset`` forgets it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core.responses import ActionResult
from moto.ecr.models import Repository, ecr_backends
from moto.ecr.responses import ECRResponse

TOKEN_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class RegistryBinding:
    endpoint: str  # scheme://host:port, as ECR's proxyEndpoint
    username: str
    password: str

    @property
    def host(self) -> str:
        return self.endpoint.split("://", 1)[-1].rstrip("/")


def bind_registry(account_id: str, region: str, settings: dict[str, str]) -> None:
    """From now until the next reset, ECR in this account and region answers for this registry."""
    binding = RegistryBinding(endpoint=settings["endpoint"], username=settings["username"],
                              password=settings["password"])
    ecr_backends[account_id][region].__dict__["_sandbox_registry"] = binding


def bound_registry(account_id: str, region: str) -> RegistryBinding | None:
    return ecr_backends[account_id][region].__dict__.get("_sandbox_registry")


def get_authorization_token(self: ECRResponse) -> ActionResult:
    bound = bound_registry(self.current_account, self.region)
    expires_at = datetime.now(UTC).replace(microsecond=0) + TOKEN_LIFETIME
    auth_data = []
    for registry_id in self._get_param("registryIds") or [self.current_account]:
        if bound:
            endpoint, user, password = bound.endpoint, bound.username, bound.password
        else:
            endpoint = f"https://{registry_id}.dkr.ecr.{self.region}.amazonaws.com"
            user, password = "AWS", f"{registry_id}-auth-token"
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        auth_data.append({"authorizationToken": token, "expiresAt": expires_at, "proxyEndpoint": endpoint})
    return ActionResult({"authorizationData": auth_data})


def _repository_uri(repository: Repository) -> str:
    bound = bound_registry(repository.account_id, repository.region_name)
    return f"{bound.host}/{repository.name}" if bound else repository.__dict__["_moto_uri"]


def _keep_moto_uri(repository: Repository, value: Any) -> None:
    repository.__dict__["_moto_uri"] = value  # moto's __init__ assigns it; the property answers


def install() -> None:
    """Replace moto's GetAuthorizationToken and repository URI (in the serving process). Idempotent."""
    ECRResponse.get_authorization_token = get_authorization_token  # type: ignore[method-assign]
    Repository.uri = property(_repository_uri, _keep_moto_uri)  # type: ignore[assignment]
