"""STS: who are we? (step 1: tools and credentials)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployer.aws import AwsError, error_code, error_message

_CREDENTIAL_CODES = {"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "UnrecognizedClientException",
                     "AccessDenied", "InvalidAccessKeyId", "AuthFailure"}


@dataclass(frozen=True)
class Identity:
    account: str
    arn: str
    user_id: str


# -- check -------------------------------------------------------------------------------------------

def caller_identity(client: Any) -> Identity:
    """The account and principal behind the credentials; a plain error if they are missing or rejected."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    try:
        found = client.get_caller_identity()
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise AwsError(f"no usable AWS credentials ({exc}). Set AWS_PROFILE (or aws.profile in "
                       "config/overrides.yml) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.") from exc
    except ClientError as exc:
        if error_code(exc) in _CREDENTIAL_CODES:
            raise AwsError(f"AWS rejected the credentials ({error_code(exc)}: {error_message(exc)}). Check the "
                           "profile or keys, and that the session token has not expired.") from exc
        raise
    return Identity(account=found["Account"], arn=found["Arn"], user_id=found["UserId"])
