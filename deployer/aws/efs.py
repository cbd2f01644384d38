"""EFS: the shared notebook file system, idempotent by CreationToken, one mount target per AZ (step 14)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from deployer.aws import AwsError
from deployer.aws import ec2 as ec2_api

NFS_PORT = 2049


# -- check -------------------------------------------------------------------------------------------

def find_file_system(client: Any, creation_token: str) -> dict[str, Any] | None:
    found = client.describe_file_systems(CreationToken=creation_token)["FileSystems"]
    return found[0] if found else None


def describe_file_system(client: Any, file_system_id: str) -> dict[str, Any] | None:
    try:
        return client.describe_file_systems(FileSystemId=file_system_id)["FileSystems"][0]
    except client.exceptions.FileSystemNotFound:
        return None


def mount_targets(client: Any, file_system_id: str) -> list[dict[str, Any]]:
    return client.describe_mount_targets(FileSystemId=file_system_id)["MountTargets"]


def mount_target_security_groups(client: Any, mount_target_id: str) -> list[str]:
    return client.describe_mount_target_security_groups(MountTargetId=mount_target_id)["SecurityGroups"]


def missing_zones(targets: list[dict[str, Any]], subnets_by_zone: dict[str, str]) -> dict[str, str]:
    """{zone: subnet} for zones the environment uses that have no mount target yet (pure)."""
    covered = {t.get("AvailabilityZoneName") for t in targets} | {t["SubnetId"] for t in targets}
    return {zone: subnet for zone, subnet in sorted(subnets_by_zone.items())
            if zone not in covered and subnet not in covered}


def file_system_drift(efs: Any, ec2: Any, creation_token: str, subnets_by_zone: dict[str, str],
                      instance_sg: str | None, mount_sg_name: str, vpc_id: str) -> list[str]:
    """What ensure_file_system would do, found by reading only."""
    fs = find_file_system(efs, creation_token)
    if fs is None:
        return ["file-system", "security-group"] + [f"mount-target:{z}" for z in sorted(subnets_by_zone)]
    drift = []
    sg = ec2_api.find_security_group(ec2, vpc_id, mount_sg_name)
    if sg is None:
        drift.append("security-group")
    elif instance_sg and not ec2_api.allows_from_group(sg, NFS_PORT, instance_sg):
        drift.append("nfs-rule")
    drift += [f"mount-target:{z}" for z in missing_zones(mount_targets(efs, fs["FileSystemId"]), subnets_by_zone)]
    return drift


# -- apply -------------------------------------------------------------------------------------------

def ensure_file_system(efs: Any, ec2: Any, *, creation_token: str, tags: dict[str, str],
                       subnets_by_zone: dict[str, str], vpc_id: str, instance_sg: str | None,
                       mount_sg_name: str, availability_zone: str = "",
                       sleep: Callable[[float], None] = time.sleep,
                       timeout: float = 300.0) -> tuple[str, list[str]]:
    """Encrypted, tagged file system + an SG admitting 2049 only from the instances' SG + a mount target
    per zone. Idempotent by CreationToken. Returns (file system id, what was done)."""
    done = []
    fs = find_file_system(efs, creation_token)
    if fs is None:
        kwargs = {"AvailabilityZoneName": availability_zone} if availability_zone else {}  # EFS One Zone
        fs = efs.create_file_system(CreationToken=creation_token, Encrypted=True, PerformanceMode="generalPurpose",
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()], **kwargs)
        done.append(f"created file system {fs['FileSystemId']}")
    fs_id = fs["FileSystemId"]
    deadline = time.monotonic() + timeout
    while fs.get("LifeCycleState") != "available":
        if time.monotonic() > deadline:
            raise AwsError(f"EFS {fs_id} is still {fs.get('LifeCycleState')} after {timeout:.0f} s")
        sleep(2)
        fs = describe_file_system(efs, fs_id) or fs

    sg = ec2_api.find_security_group(ec2, vpc_id, mount_sg_name)
    if sg is None:
        sg_id = ec2_api.create_security_group(ec2, vpc_id, mount_sg_name,
                                              "NFS from the Sifu Elastic Beanstalk instances only", tags)
        done.append(f"created security group {mount_sg_name} ({sg_id})")
        sg = ec2.describe_security_groups(GroupIds=[sg_id])["SecurityGroups"][0]
    if instance_sg and not ec2_api.allows_from_group(sg, NFS_PORT, instance_sg):
        ec2_api.allow_from_group(ec2, sg["GroupId"], NFS_PORT, instance_sg, "NFS from EB instances")
        done.append(f"allowed {NFS_PORT}/tcp from {instance_sg}")

    for zone, subnet in missing_zones(mount_targets(efs, fs_id), subnets_by_zone).items():
        try:
            efs.create_mount_target(FileSystemId=fs_id, SubnetId=subnet, SecurityGroups=[sg["GroupId"]])
            done.append(f"created mount target in {zone}")
        except efs.exceptions.MountTargetConflict:  # created meanwhile
            pass
    return fs_id, done


def delete_file_system(client: Any, file_system_id: str, sleep: Callable[[float], None] = time.sleep,
                       attempts: int = 60, interval: float = 5.0) -> None:
    """Delete the file system's mount targets, wait until they are gone (EFS refuses before), then it."""
    for target in mount_targets(client, file_system_id):
        client.delete_mount_target(MountTargetId=target["MountTargetId"])
    for _ in range(attempts):
        if not mount_targets(client, file_system_id):
            break
        sleep(interval)
    client.delete_file_system(FileSystemId=file_system_id)
