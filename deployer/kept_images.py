"""The registry images application versions still need, and the ``keep-<version label>`` tags that protect
them from the lifecycle policy's keep-N rule (ECR-LIFECYCLE-COUNT, ECR-LIFECYCLE-PROTECT).

Kept: the live version's image and the image of each version ``inv rollback`` promises to return to (the one
before the live one). Which image a version names is read from its bundle's Dockerrun.aws.json in EB's bucket,
so it is what the instances pull. Used by the deploy (step 14g) and by ``inv rollback``.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field

from deployer import names
from deployer.aws import Aws, eb, ecr, s3
from deployer.config import Settings

ROLLBACK_TARGETS = 1  # `inv rollback` without --to returns to the version before the live one


@dataclass(frozen=True)
class KeepPlan:
    kept: dict[str, str] = field(default_factory=dict)    # version label -> its image tag
    add: dict[str, str] = field(default_factory=dict)     # keep tag -> the image tag it goes on
    remove: list[str] = field(default_factory=list)       # keep tags no kept version needs


def kept_versions(labels: list[str], live: str | None) -> list[str]:
    """The live version and its rollback targets (``labels`` newest first, as `inv rollback` sees them)."""
    if not live:
        return []
    if live not in labels:
        return [live]
    at = labels.index(live)
    return labels[at:at + 1 + ROLLBACK_TARGETS]


def image_tag(bundle: bytes, repository: str) -> str | None:
    """The tag of the image in ``repository`` the bundle's Dockerrun.aws.json names, or None."""
    try:
        with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
            name = json.loads(archive.read("Dockerrun.aws.json"))["Image"]["Name"]
    except (KeyError, ValueError, zipfile.BadZipFile):
        return None
    path, _, tag = name.split("@", 1)[0].rpartition(":")
    if "/" in tag or not path.endswith(f"/{repository}"):
        return None
    return tag


def plan(access: Aws, s: Settings, account: str, live: str | None) -> KeepPlan:
    """What to tag and untag so exactly the kept versions' images carry keep- tags (reads only)."""
    client = access.client("ecr", region=s.ecr.region)
    tags = ecr.image_tags(client, s.ecr.repository)
    labels = eb.version_labels(access.client("elasticbeanstalk"), s.eb.application)
    bucket = eb.storage_bucket(s.eb.region, account)
    kept: dict[str, str] = {}
    for label in kept_versions(labels, live):
        bundle = s3.read_object(access.client("s3"), bucket, names.bundle_key(s, label))
        tag = image_tag(bundle, s.ecr.repository) if bundle else None
        if tag and tag in tags:
            kept[label] = tag
    wanted = {ecr.keep_tag(label): tag for label, tag in kept.items()}
    add = {keep: tag for keep, tag in wanted.items() if keep not in tags}
    # Untag only where the image keeps another tag: removing an image's last tag deletes the image.
    remove = [keep for keep, digest in tags.items() if keep.startswith(ecr.KEEP_PREFIX) and keep not in wanted
              and any(t != keep and d == digest for t, d in tags.items())]
    return KeepPlan(kept=kept, add=add, remove=sorted(remove))


def apply(access: Aws, s: Settings, keep: KeepPlan) -> list[str]:
    client = access.client("ecr", region=s.ecr.region)
    done = []
    for new_tag, tag in keep.add.items():
        ecr.add_tag(client, s.ecr.repository, tag, new_tag)
        done.append(f"tagged {tag} {new_tag}")
    for old in keep.remove:
        ecr.remove_tag(client, s.ecr.repository, old)
        done.append(f"removed tag {old}")
    return done
