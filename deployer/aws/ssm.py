"""SSM Parameter Store: secrets as SecureString parameters, referenced from EB instead of copied into it."""

from __future__ import annotations

from typing import Any


# -- check -------------------------------------------------------------------------------------------

def parameter_matches(client: Any, name: str, value: str) -> bool | None:
    """None if the parameter is missing; else whether it is a SecureString holding ``value``.
    The decrypted value is compared here and never returned or logged."""
    try:
        found = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    except client.exceptions.ParameterNotFound:
        return None
    return found["Type"] == "SecureString" and found["Value"] == value


def secure_value(client: Any, name: str) -> str | None:
    """The decrypted value of a SecureString (None if missing). The caller registers it as a secret."""
    try:
        return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except client.exceptions.ParameterNotFound:
        return None


def parameter_arn(client: Any, name: str) -> str | None:
    try:
        return client.get_parameter(Name=name)["Parameter"]["ARN"]
    except client.exceptions.ParameterNotFound:
        return None


# -- apply -------------------------------------------------------------------------------------------

def ensure_secure_parameter(client: Any, name: str, value: str, tags: dict[str, str] | None = None) -> list[str]:
    """Store ``value`` as a SecureString unless it is already there. Returns what was done."""
    state = parameter_matches(client, name, value)
    if state is True:
        return []
    client.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=state is not None)
    if state is None and tags:
        client.add_tags_to_resource(ResourceType="Parameter", ResourceId=name,
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return [f"{'created' if state is None else 'updated'} SecureString parameter {name}"]


def delete_parameters(client: Any, names: list[str]) -> list[str]:
    """Delete those of ``names`` that exist; returns the ones deleted."""
    existing = [p["Name"] for p in client.get_parameters(Names=names)["Parameters"]]
    if existing:
        client.delete_parameters(Names=existing)
    return existing
