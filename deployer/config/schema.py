"""What a valid configuration is: the settings model, its value types and the refusal of hostile values.

Every section forbids unknown keys; every string type refuses characters that could escape into a
shell line, an nginx file, a CSP header or a path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

_HOSTILE = [
    ("'", "a quote"),
    ('"', "a quote"),
    ("`", "a backtick"),
    ("$", "a '$' (shell or nginx expansion)"),
    (";", "a ';'"),
    ("{", "a brace"),
    ("}", "a brace"),
    ("\\", "a backslash"),
    ("|", "a '|'"),
    ("&", "a '&'"),
    ("<", "a '<'"),
    (">", "a '>'"),
    ("..", "'..'"),
]


def refuse_hostile(value: str) -> str:
    """Refuse characters that could escape into a shell line, an nginx file, a CSP header or a path."""
    for needle, what in _HOSTILE:
        if needle in value:
            raise ValueError(
                f"contains {what}, which could reach a shell, an nginx file, a CSP header or a path; remove it"
            )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("contains a control character (newline, tab, NUL...); remove it")
    return value


def _pattern(regex: str, hint: str):
    compiled = re.compile(regex)

    def check(value: str) -> str:
        refuse_hostile(value)
        if value and not compiled.fullmatch(value):
            raise ValueError(hint)
        return value

    return AfterValidator(check)


def _host_port(value: str) -> str:
    refuse_hostile(value)
    if not value:
        return value
    if "://" in value:
        raise ValueError("must be host[:port] without a scheme; drop the 'http(s)://' (edx.force_ssl picks https)")
    if "/" in value:
        raise ValueError("must be host[:port] without a path; drop everything from the first '/'")
    match = re.fullmatch(r"([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)(:(\d{1,5}))?", value)
    if not match or (match.group(6) and not 0 < int(match.group(6)) < 65536):
        raise ValueError("must be a host name with an optional port, like lms.example.org or lms.example.org:8000")
    return value


def _origin(value: str) -> str:
    refuse_hostile(value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
        raise ValueError("must be an origin like https://studio.example.org (scheme and host, optional port, no path)")
    _host_port(parts.netloc)
    return value


def _url(schemes: tuple[str, ...]):
    def check(value: str) -> str:
        refuse_hostile(value)
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc or " " in value:
            raise ValueError(f"must be a {' or '.join(schemes)} URL such as {schemes[0]}://host/path")
        _host_port(parts.netloc.rsplit("@", 1)[-1])
        return value

    return AfterValidator(check)


def _no_control(value: SecretStr) -> SecretStr:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value.get_secret_value()):
        raise ValueError("contains a control character (newline, tab, NUL...); remove it")
    return value


Name = Annotated[str, _pattern(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}", "use letters, digits and dashes (at most 63), starting with a letter or digit")]
Region = Annotated[str, _pattern(r"[a-z]{2}(-[a-z]+)+-\d", "must be an AWS region such as us-east-1")]
Zone = Annotated[str, _pattern(r"[a-z]{2}(-[a-z]+)+-\d[a-z]", "must be an Availability Zone such as us-east-1a, or empty")]
HostPort = Annotated[str, AfterValidator(_host_port)]
Origin = Annotated[str, AfterValidator(_origin)]
AbsPath = Annotated[str, _pattern(r"/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", "must be an absolute path of letters, digits, '.', '_', '-' such as /mnt/efs")]
RelPath = Annotated[str, _pattern(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", "must be a relative file path such as .deployment_token")]
FileSystemId = Annotated[str, _pattern(r"fs-[0-9a-f]{8,17}", "must be an EFS id such as fs-0123456789abcdef0, or empty to create one")]
Arn = Annotated[str, _pattern(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:[A-Za-z0-9/._:+= -]+", "must be an ARN (arn:aws:...), or empty")]
InstanceType = Annotated[str, _pattern(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "must be an EC2 instance type such as t3.small")]
KeyName = Annotated[str, _pattern(r"[A-Za-z0-9._-]{1,255}", "must be an EC2 key pair name (letters, digits, '.', '_', '-')")]
RoleName = Annotated[str, _pattern(r"[A-Za-z0-9+=,.@_-]{1,64}", "must be an IAM name (letters, digits, +=,.@_-)")]
BucketName = Annotated[str, _pattern(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "must be an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")]
EcrRepo = Annotated[str, _pattern(r"[a-z0-9]+([._/-][a-z0-9]+)*", "must be an ECR repository name (lowercase letters, digits, '.', '_', '-', '/')")]
ImageRef = Annotated[str, _pattern(r"[a-z0-9]+([._/-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[0-9a-f]{64})?", "must be an image reference such as python:3.11.10-slim-bookworm")]
GitRef = Annotated[str, _pattern(r"[A-Za-z0-9][A-Za-z0-9._/-]*", "must be a branch, tag or commit (letters, digits, '.', '_', '-', '/')")]
DbIdent = Annotated[str, _pattern(r"[A-Za-z][A-Za-z0-9_]{0,62}", "must start with a letter and use letters, digits and '_'")]
EdxUsername = Annotated[str, _pattern(r"[\w.@+-]{1,150}", "must be an LMS username (letters, digits, '_', '.', '@', '+', '-')")]
UnixUser = Annotated[str, _pattern(r"[a-z_][a-z0-9_-]{0,31}", "must be a Unix user name such as ec2-user")]
Gateway = Annotated[str, _pattern(r"([a-z_][a-z0-9_-]*@)?[A-Za-z0-9.-]+(:\d{1,5})?", "must be [user@]host[:port], or empty")]
ProxyCommand = Annotated[str, _pattern(r"[A-Za-z0-9 %=,:/._@+-]*", "may use letters, digits, spaces and %=,:/._@+- only")]
Secret = Annotated[SecretStr, AfterValidator(_no_control)]
Port = Annotated[int, Field(ge=1024, le=65535)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Project(Section):
    name: Name


class Aws(Section):
    profile: Annotated[str, _pattern(r"[A-Za-z0-9._-]*", "must be a profile name from ~/.aws/config")]


class Ecr(Section):
    region: Region
    repository: EcrRepo
    keep_images: Annotated[int, Field(ge=1, le=1000)]


class Eb(Section):
    region: Region
    application: Annotated[str, _pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", "use letters, digits, '.', '_' and '-' (at most 100)")]
    environment: Annotated[str, _pattern(r"[A-Za-z0-9][A-Za-z0-9-]{2,38}[A-Za-z0-9]", "must be 4-40 letters, digits and dashes, not starting or ending with a dash")]
    platform_arn: Arn
    instance_type: InstanceType
    min_instances: Annotated[int, Field(ge=1, le=100)]
    max_instances: Annotated[int, Field(ge=1, le=100)]
    key_name: Annotated[str, _pattern(r"[A-Za-z0-9._-]{0,255}", "must be an EC2 key pair name (letters, digits, '.', '_', '-')")]
    instance_profile: RoleName
    certificate_arn: Arn
    ssl_policy: Annotated[str, _pattern(r"ELBSecurityPolicy-[A-Za-z0-9-]+", "must be an ELB security policy name such as ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09")]
    idle_timeout: Annotated[int, Field(ge=1, le=4000)]
    cname_prefix: Annotated[str, _pattern(r"[a-z0-9][a-z0-9-]{2,61}[a-z0-9]", "must be 4-63 lowercase letters, digits and dashes, or empty")]
    wait_timeout: Annotated[int, Field(ge=30, le=86400)]
    health_grace: Annotated[int, Field(ge=0, le=86400)]
    poll_interval: Annotated[float, Field(ge=0.1, le=300)]


class Storage(Section):
    kind: Literal["efs", "s3"]
    s3_bucket: Annotated[str, _pattern(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "must be an S3 bucket name (3-63 lowercase letters, digits, '.', '-'), or empty")]
    owner_uid: Annotated[int, Field(ge=1, le=2**31 - 1)]
    owner_gid: Annotated[int, Field(ge=1, le=2**31 - 1)]


class Efs(Section):
    file_system_id: FileSystemId
    region: Region
    mount_point: AbsPath
    availability_zone: Zone


class Rds(Section):
    mode: Literal["none", "managed", "external"]
    db_name: DbIdent
    port: Annotated[int, Field(ge=1, le=65535)]
    username: DbIdent
    password: Secret
    host: HostPort
    instance_class: Annotated[str, _pattern(r"db\.[a-z0-9]+\.[a-z0-9]+", "must be an RDS instance class such as db.t4g.micro")]
    allocated_storage: Annotated[int, Field(ge=20, le=65536)]


class Edx(Section):
    hostname: HostPort
    studio_hostname: HostPort
    oauth2_client_id: Annotated[str, _pattern(r"[A-Za-z0-9._-]*", "must be the OAuth2 client id (letters, digits, '.', '_', '-')")]
    oauth2_client_secret: Secret
    oauth2_redirect_uri: Annotated[str, _url(("https", "http"))]
    force_ssl: bool


class Ports(Section):
    sifu: Port
    jupyter: Port
    peer: Port


class Web(Section):
    public_host: HostPort
    https: bool
    frame_ancestors: list[Origin]
    max_body_mb: Annotated[int, Field(ge=1, le=10240)]
    read_timeout: Annotated[int, Field(ge=1, le=86400)]


class Sifu(Section):
    source: Literal["local", "git"]
    git_url: Annotated[str, _url(("https",))]
    git_ref: GitRef
    staff_usernames: list[EdxUsername]
    workers: Annotated[int, Field(ge=1, le=64)]
    token_ttl: Annotated[int, Field(ge=60, le=30 * 86400)]


class Jupyter(Section):
    cull_idle_timeout: Annotated[int, Field(ge=60)]
    cull_interval: Annotated[int, Field(ge=10)]
    max_kernels_per_student: Annotated[int, Field(ge=1, le=50)]
    max_disk_mib_per_student: Annotated[int, Field(ge=0)]
    max_files_per_student: Annotated[int, Field(ge=0)]
    disk_check_interval: Annotated[int, Field(ge=5, le=3600)]


class Image(Section):
    name: EcrRepo
    base_image: ImageRef
    build_network: Annotated[str, _pattern(r"[a-z0-9][a-z0-9_.-]{0,62}|", "must be a Docker network name such as host, or empty")]


class DeploymentToken(Section):
    file: RelPath


class Ssh(Section):
    user: UnixUser
    key_file: Annotated[str, _pattern(r"[A-Za-z0-9~._/-]*", "must be a path to a private key (letters, digits, '~', '.', '_', '/', '-')")]
    port: Annotated[int, Field(ge=1, le=65535)]
    gateway: Gateway
    proxy_command: ProxyCommand
    connect_timeout: Annotated[int, Field(ge=1, le=600)]


class Remote(Section):
    container_filter: Annotated[str, _pattern(r"[a-z]+=[A-Za-z0-9_./:=-]+", "must be a docker ps filter such as label=sifu.role=app")]
    container_wait: Annotated[int, Field(ge=1, le=3600)]
    # The app container's cgroup limits, set by converge (docker update): 0 = the instance's memory minus the reserve.
    container_memory_mb: Annotated[int, Field(ge=0, le=4_194_304)]
    host_memory_reserve_mb: Annotated[int, Field(ge=0, le=1_048_576)]
    container_pids_limit: Annotated[int, Field(ge=256, le=4_194_304)]


class Smoke(Section):
    sifu_url: Annotated[str, _url(("http", "https"))]
    jupyter_url: Annotated[str, _url(("http", "https"))]
    timeout: Annotated[float, Field(ge=1, le=600)]


class Settings(Section):
    project: Project
    aws: Aws
    ecr: Ecr
    eb: Eb
    storage: Storage
    efs: Efs
    rds: Rds
    edx: Edx
    ports: Ports
    web: Web
    sifu: Sifu
    jupyter: Jupyter
    image: Image
    deployment_token: DeploymentToken
    ssh: Ssh
    remote: Remote
    smoke: Smoke

    def get(self, path: str) -> Any:
        value: Any = self
        for part in path.split("."):
            value = getattr(value, part)
        return value


def _secret_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= _secret_paths(annotation, f"{prefix}{name}.")
        elif annotation is SecretStr:
            paths.add(prefix + name)
    return paths


SECRET_PATHS = frozenset(_secret_paths(Settings))


# --- dotted paths into the settings tree ------------------------------------------------------------


def leaves(data: dict, prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def set_path(data: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


