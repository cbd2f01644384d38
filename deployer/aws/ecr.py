"""ECR: the image repository (steps 2-4): scan on push, immutable tags, a lifecycle policy, the login."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any




@dataclass(frozen=True)
class RegistryLogin:
    username: str
    password: str
    registry: str  # host[:port], without scheme
    expires_at: datetime | None

    def __repr__(self) -> str:  # the token is a secret
        return f"RegistryLogin(username={self.username!r}, registry={self.registry!r}, password=<redacted>)"


def lifecycle_policy(keep_last: int) -> str:
    """The lifecycle policy text that keeps the newest ``keep_last`` images (pure; compared as text)."""
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"keep the last {keep_last} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_last},
        "action": {"type": "expire"},
    }]}, sort_keys=True, separators=(",", ":"))


# -- check -------------------------------------------------------------------------------------------

def find_repository(client: Any, name: str) -> dict[str, Any] | None:
    """The repository description, or None if it does not exist."""
    try:
        return client.describe_repositories(repositoryNames=[name])["repositories"][0]
    except client.exceptions.RepositoryNotFoundException:
        return None


def get_lifecycle_policy(client: Any, name: str) -> dict[str, Any] | None:
    """The repository's lifecycle policy (parsed), or None if it has none."""
    try:
        text = client.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
    except client.exceptions.LifecyclePolicyNotFoundException:
        return None
    return json.loads(text)


def repository_drift(client: Any, name: str, keep_last: int) -> list[str]:
    """What differs from the wanted repository: 'missing', or the settings to fix."""
    repo = find_repository(client, name)
    if repo is None:
        return ["missing"]
    drift = []
    if not repo.get("imageScanningConfiguration", {}).get("scanOnPush"):
        drift.append("scan-on-push")
    if repo.get("imageTagMutability") != "IMMUTABLE":
        drift.append("immutable-tags")
    if get_lifecycle_policy(client, name) != json.loads(lifecycle_policy(keep_last)):
        drift.append("lifecycle-policy")
    return drift


def image_exists(client: Any, repository: str, tag: str) -> bool:
    try:
        client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        return True
    except client.exceptions.ImageNotFoundException:
        return False
    except client.exceptions.RepositoryNotFoundException:
        return False


def registry_login(client: Any) -> RegistryLogin:
    """Docker login details. The token lasts 12 h, so fetch it on every run (a read: it changes nothing)."""
    data = client.get_authorization_token()["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    registry = data["proxyEndpoint"].split("://", 1)[-1].rstrip("/")
    return RegistryLogin(username=username, password=password, registry=registry,
                         expires_at=data.get("expiresAt"))


# -- apply -------------------------------------------------------------------------------------------

def ensure_repository(client: Any, name: str, keep_last: int, tags: dict[str, str] | None = None) -> list[str]:
    """Create or fix the repository; returns what was done ([] when it already matched)."""
    done = []
    drift = repository_drift(client, name, keep_last)
    if "missing" in drift:
        try:
            client.create_repository(
                repositoryName=name, imageTagMutability="IMMUTABLE",
                imageScanningConfiguration={"scanOnPush": True},
                tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            )
            done.append(f"created repository {name}")
        except client.exceptions.RepositoryAlreadyExistsException:  # created meanwhile: fine
            pass
        drift = repository_drift(client, name, keep_last)
    if "scan-on-push" in drift:
        client.put_image_scanning_configuration(repositoryName=name,
                                                imageScanningConfiguration={"scanOnPush": True})
        done.append("turned on scan-on-push")
    if "immutable-tags" in drift:
        client.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
        done.append("made tags immutable")
    if "lifecycle-policy" in drift:
        client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=lifecycle_policy(keep_last))
        done.append(f"set lifecycle policy: keep the last {keep_last} images")
    return done


def delete_repository(client: Any, name: str) -> None:
    """Delete the repository and every image in it."""
    client.delete_repository(repositoryName=name, force=True)
