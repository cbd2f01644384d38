"""S3: the EB storage bucket holds source bundles, keyed by content hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deployer.aws import error_code


# -- check -------------------------------------------------------------------------------------------

def object_exists(client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            return False
        raise


def read_object(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            return None
        raise


def bucket_exists(client: Any, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise


# -- apply -------------------------------------------------------------------------------------------

def upload_bundle(client: Any, bucket: str, key: str, bundle: Path | bytes) -> bool:
    """Upload the bundle unless that key is already there (keys are content hashes). True if uploaded."""
    if object_exists(client, bucket, key):
        return False
    body = bundle.read_bytes() if isinstance(bundle, Path) else bundle
    client.put_object(Bucket=bucket, Key=key, Body=body)
    return True
