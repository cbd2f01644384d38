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


KEEP_PREFIX = "keep-"
# Rule 1's count: high enough that no image we tag keep- is ever expired (ECR-LIFECYCLE-PROTECT).
KEEP_TAGGED_COUNT = 1000


def lifecycle_policy(keep_last: int) -> str:
    """The lifecycle policy text (pure; compared as text): rule 1 protects images tagged ``keep-…`` (the
    deployer tags the images of the live and rollback-target versions so), rule 2 keeps the newest
    ``keep_last`` of the rest. An image a higher-priority rule matches cannot be expired by a lower one, and a
    ``tagStatus: any`` rule must come last (ECR-LIFECYCLE-PROTECT, ECR-LIFECYCLE-COUNT)."""
    return json.dumps({"rules": [
        {"rulePriority": 1,
         "description": "never expire images the live or a rollback-target version names (keep-<version>)",
         "selection": {"tagStatus": "tagged", "tagPrefixList": [KEEP_PREFIX], "countType": "imageCountMoreThan",
                       "countNumber": KEEP_TAGGED_COUNT},
         "action": {"type": "expire"}},
        {"rulePriority": 2,
         "description": f"keep the last {keep_last} images",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep_last},
         "action": {"type": "expire"}},
    ]}, sort_keys=True, separators=(",", ":"))


def keep_tag(version_label: str) -> str:
    """The tag that protects the image of application version ``version_label`` (ECR tags allow letters,
    digits, '_', '.', '-', at most 128)."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_.-") else "-" for ch in version_label)
    return (KEEP_PREFIX + safe)[:128]


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


def image_tags(client: Any, repository: str) -> dict[str, str]:
    """Every tag in the repository -> the digest of its image."""
    tags: dict[str, str] = {}
    for page in client.get_paginator("describe_images").paginate(repositoryName=repository):
        for image in page["imageDetails"]:
            tags.update({tag: image["imageDigest"] for tag in image.get("imageTags", [])})
    return tags


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


def add_tag(client: Any, repository: str, tag: str, new_tag: str) -> None:
    """Tag the image ``tag`` also as ``new_tag``: PutImage with its existing manifest (a new tag is allowed with
    immutable tags; nothing is uploaded, ECR-IMMUTABLE)."""
    image = client.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])["images"][0]
    extra = {"imageManifestMediaType": image["imageManifestMediaType"]} if image.get("imageManifestMediaType") else {}
    client.put_image(repositoryName=repository, imageManifest=image["imageManifest"], imageTag=new_tag, **extra)


def remove_tag(client: Any, repository: str, tag: str) -> None:
    """Remove one tag; the image stays while it has another (BatchDeleteImage by tag, ECR-IMMUTABLE)."""
    client.batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
