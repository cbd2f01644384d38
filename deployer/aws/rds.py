"""RDS: a managed database created outside the EB environment, so rebuilding the environment never deletes it."""

from __future__ import annotations

from typing import Any


# -- check -------------------------------------------------------------------------------------------

def find_db_instance(client: Any, identifier: str) -> dict[str, Any] | None:
    try:
        return client.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    except client.exceptions.DBInstanceNotFoundFault:
        return None


# -- apply -------------------------------------------------------------------------------------------

def create_db_instance(client: Any, *, identifier: str, db_name: str, username: str, password: str,
                       instance_class: str, allocated_storage: int, port: int, security_group_ids: list[str],
                       tags: dict[str, str]) -> dict[str, Any]:
    """PostgreSQL with deletion protection and encryption; the password is passed once and never logged."""
    return client.create_db_instance(
        DBInstanceIdentifier=identifier, DBName=db_name, Engine="postgres", MasterUsername=username,
        MasterUserPassword=password, DBInstanceClass=instance_class, AllocatedStorage=allocated_storage,
        Port=port, VpcSecurityGroupIds=security_group_ids, StorageEncrypted=True, DeletionProtection=True,
        PubliclyAccessible=False, Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )["DBInstance"]
