"""Which images the registry keeps: the keep- tags and the lifecycle policy's rules (ECR-LIFECYCLE-COUNT,
ECR-LIFECYCLE-PROTECT), evaluated with the documented rule semantics."""

from __future__ import annotations

import io
import json
import zipfile

from deployer import kept_images
from deployer.aws import ecr


def expired(policy: str, images: list[tuple[str, list[str]]]) -> set[str]:
    """ECR's documented evaluation: rules by priority; an image a higher-priority rule matched is out of reach
    of lower ones; imageCountMoreThan expires, youngest first by push time, every match beyond the count.
    ``images``: (digest, tags), oldest pushed first."""
    gone, matched = set(), set()
    for rule in sorted(json.loads(policy)["rules"], key=lambda r: r["rulePriority"]):
        sel = rule["selection"]
        hits = [d for d, tags in images if d not in matched and (
            sel["tagStatus"] == "any" or any(t.startswith(p) for t in tags for p in sel.get("tagPrefixList", [""])))]
        matched.update(hits)
        gone.update(list(reversed(hits))[sel["countNumber"]:])
    return gone


def test_a_live_image_older_than_the_keep_n_window_is_never_expired():
    images = [("live", ["v1", ecr.keep_tag("label-1")])] + [(f"d{i}", [f"t{i}"]) for i in range(12)]
    assert "live" not in expired(ecr.lifecycle_policy(3), images)
    assert expired(ecr.lifecycle_policy(3), images) == {f"d{i}" for i in range(9)}
    # Today's single keep-N rule would expire it.
    old = json.dumps({"rules": [json.loads(ecr.lifecycle_policy(3))["rules"][1] | {"rulePriority": 1}]})
    assert "live" in expired(old, images)


def test_kept_versions_are_the_live_one_and_its_rollback_target():
    assert kept_images.kept_versions(["c", "b", "a"], "c") == ["c", "b"]
    assert kept_images.kept_versions(["c", "b", "a"], "b") == ["b", "a"]
    assert kept_images.kept_versions(["c", "b", "a"], "a") == ["a"]
    assert kept_images.kept_versions([], None) == []


def bundle(image: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("Dockerrun.aws.json", json.dumps({"AWSEBDockerrunVersion": "1", "Image": {"Name": image}}))
    return out.getvalue()


def test_image_tag_comes_from_the_bundle_for_our_repository_only():
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert kept_images.image_tag(bundle(f"{uri}/sifu-notebooks:abc123"), "sifu-notebooks") == "abc123"
    assert kept_images.image_tag(bundle("127.0.0.1:5000/sifu-notebooks:abc"), "sifu-notebooks") == "abc"
    assert kept_images.image_tag(bundle(f"{uri}/other:abc123"), "sifu-notebooks") is None
    assert kept_images.image_tag(bundle("127.0.0.1:5000/sifu-notebooks"), "sifu-notebooks") is None
    assert kept_images.image_tag(b"not a zip", "sifu-notebooks") is None


def test_keep_tag_is_a_valid_ecr_tag():
    assert ecr.keep_tag("app-0a1b") == "keep-app-0a1b"
    assert ecr.keep_tag("v 1/2") == "keep-v-1-2"
    assert len(ecr.keep_tag("x" * 300)) == 128
