"""EC2: the VPC, subnets and security groups around EFS, the key pair for SSH, and instance addresses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployer.aws import error_code


@dataclass(frozen=True)
class Instance:
    id: str
    state: str
    public_ip: str | None
    private_ip: str | None
    availability_zone: str
    subnet_id: str | None
    security_group_ids: tuple[str, ...]


# -- check -------------------------------------------------------------------------------------------

def default_vpc_id(client: Any) -> str | None:
    found = client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return found[0]["VpcId"] if found else None


def subnets(client: Any, subnet_ids: list[str]) -> list[dict[str, Any]]:
    return client.describe_subnets(SubnetIds=subnet_ids)["Subnets"] if subnet_ids else []


def default_subnets_by_zone(client: Any, vpc_id: str) -> dict[str, str]:
    """{availability zone: subnet id} of the VPC's default subnets, by zone."""
    found = client.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                             {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return {sn["AvailabilityZone"]: sn["SubnetId"] for sn in sorted(found, key=lambda sn: sn["AvailabilityZone"])}


def key_pair_exists(client: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.describe_key_pairs(KeyNames=[name])
        return True
    except ClientError as exc:
        if error_code(exc) == "InvalidKeyPair.NotFound":
            return False
        raise


def find_security_group(client: Any, vpc_id: str, name: str) -> dict[str, Any] | None:
    found = client.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                     {"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    return found[0] if found else None


def allows_from_group(group: dict[str, Any], port: int, source_group_id: str) -> bool:
    """Whether ``group`` lets TCP ``port`` in from ``source_group_id`` (pure, on a describe result)."""
    for perm in group.get("IpPermissions", []):
        if perm.get("IpProtocol") not in ("tcp", "-1"):
            continue
        if perm.get("IpProtocol") == "tcp" and not (perm.get("FromPort", 0) <= port <= perm.get("ToPort", 65535)):
            continue
        if any(p.get("GroupId") == source_group_id for p in perm.get("UserIdGroupPairs", [])):
            return True
    return False


def admits_world(group: dict[str, Any], port: int) -> bool:
    """Whether ``group`` lets TCP ``port`` in from 0.0.0.0/0 and ::/0 (pure, on a describe result)."""
    perms = [p for p in group.get("IpPermissions", []) if p.get("IpProtocol") == "tcp"
             and p.get("FromPort", 0) <= port <= p.get("ToPort", 65535)]
    return any(r.get("CidrIp") == "0.0.0.0/0" for p in perms for r in p.get("IpRanges", [])) \
        and any(r.get("CidrIpv6") == "::/0" for p in perms for r in p.get("Ipv6Ranges", []))


def open_to_world(group: dict[str, Any]) -> bool:
    """Whether any ingress rule of ``group`` admits 0.0.0.0/0 or ::/0."""
    return any(r.get("CidrIp") == "0.0.0.0/0" for p in group.get("IpPermissions", []) for r in p.get("IpRanges", [])) \
        or any(r.get("CidrIpv6") == "::/0" for p in group.get("IpPermissions", []) for r in p.get("Ipv6Ranges", []))


def instances(client: Any, ids: list[str]) -> list[Instance]:
    if not ids:
        return []
    out = []
    for reservation in client.describe_instances(InstanceIds=ids)["Reservations"]:
        for i in reservation["Instances"]:
            out.append(Instance(
                id=i["InstanceId"], state=i["State"]["Name"], public_ip=i.get("PublicIpAddress"),
                private_ip=i.get("PrivateIpAddress"), availability_zone=i["Placement"]["AvailabilityZone"],
                subnet_id=i.get("SubnetId"), security_group_ids=tuple(g["GroupId"] for g in i.get("SecurityGroups", [])),
            ))
    return sorted(out, key=lambda x: x.id)


def environment_instances(client: Any, environment: str) -> list[Instance]:
    """The running instances EB tagged with ``environment`` (elasticbeanstalk:environment-name)."""
    found = client.describe_instances(Filters=[
        {"Name": "tag:elasticbeanstalk:environment-name", "Values": [environment]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ])["Reservations"]
    return instances(client, [i["InstanceId"] for r in found for i in r["Instances"]])


def ssh_address(instance: Instance, through_bastion: bool) -> str | None:
    """The address to SSH to: private behind a bastion or ProxyCommand, else public (private as a fallback)."""
    if through_bastion:
        return instance.private_ip or instance.public_ip
    return instance.public_ip or instance.private_ip


# -- apply -------------------------------------------------------------------------------------------

def create_security_group(client: Any, vpc_id: str, name: str, description: str,
                          tags: dict[str, str] | None = None) -> str:
    spec = [{"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
    return client.create_security_group(GroupName=name, Description=description, VpcId=vpc_id,
                                        TagSpecifications=spec if tags else [])["GroupId"]


def allow_from_group(client: Any, group_id: str, port: int, source_group_id: str, description: str = "") -> None:
    pair = {"GroupId": source_group_id}
    if description:
        pair["Description"] = description
    client.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "UserIdGroupPairs": [pair]}])


def allow_from_world(client: Any, group_id: str, port: int, description: str = "") -> None:
    """TCP ``port`` from any IPv4 and IPv6 address (a load balancer's listener)."""
    client.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": description}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": description}]}])


def delete_security_group(client: Any, group_id: str) -> None:
    client.delete_security_group(GroupId=group_id)
