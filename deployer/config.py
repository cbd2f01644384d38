"""Layered configuration: load, merge, validate once, before anything acts.

Layers, lowest first:
defaults < saved answers < overrides file < `environments.<name>` < environment variables < flags.
Every leaf remembers which layer set it, so `inv config` can say where a value came from.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from deployer import REPO_ROOT

DEFAULTS_FILE = REPO_ROOT / "config" / "defaults.yml"
DEFAULT_OVERRIDES = REPO_ROOT / "config" / "overrides.yml"
ANSWERS_FILE = REPO_ROOT / ".deploy-answers.yml"

# Documented environment variables. The seed's names are kept; every other setting can be
# set as DEPLOY__<SECTION>__<KEY> (for example DEPLOY__EB__INSTANCE_TYPE=t3.large).
ENV_VARS = {
    "EDX_HOSTNAME": "edx.hostname",
    "EDX_OAUTH2_CLIENT_ID": "edx.oauth2_client_id",
    "EDX_OAUTH2_CLIENT_SECRET": "edx.oauth2_client_secret",
    "EDX_OAUTH2_CLIENT_REDIRECT_URI": "edx.oauth2_redirect_uri",
    "EDX_OAUTH2_FORCE_SSL": "edx.force_ssl",
    "EFS_ID": "efs.file_system_id",
    "RDS_DB_NAME": "rds.db_name",
    "RDS_PORT": "rds.port",
    "RDS_USERNAME": "rds.username",
    "RDS_PASSWORD": "rds.password",
    "RDS_HOSTNAME": "rds.host",
    "AWS_PROFILE": "aws.profile",
}
GENERIC_ENV_PREFIX = "DEPLOY__"

REDACTED = "********"


class ConfigError(Exception):
    """One or more settings are wrong; nothing has been changed."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = [f"configuration has {len(problems)} problem(s); nothing was changed:"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    value: str | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = self.path
        if self.value is not None:
            where += f" = {self.value}"
        if self.source:
            where += f" (from {self.source})"
        return f"{where}: {self.message}"


# --- value types ---------------------------------------------------------------------------

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
    idle_timeout: Annotated[int, Field(ge=1, le=4000)]
    cname_prefix: Annotated[str, _pattern(r"[a-z0-9][a-z0-9-]{2,61}[a-z0-9]", "must be 4-63 lowercase letters, digits and dashes, or empty")]
    wait_timeout: Annotated[int, Field(ge=30, le=86400)]
    poll_interval: Annotated[float, Field(ge=0.1, le=300)]


class Storage(Section):
    kind: Literal["efs", "s3"]
    s3_bucket: Annotated[str, _pattern(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "must be an S3 bucket name (3-63 lowercase letters, digits, '.', '-'), or empty")]


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


class Image(Section):
    name: EcrRepo
    base_image: ImageRef


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
    container_filter: Annotated[str, _pattern(r"[a-z]+=[A-Za-z0-9_./:-]+", "must be a docker ps filter such as ancestor=aws_beanstalk/current-app")]
    container_wait: Annotated[int, Field(ge=1, le=3600)]


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


# --- loading and merging ---------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    source: str
    data: dict


@dataclass
class Loaded:
    """Validated settings plus where each value came from."""

    settings: Settings
    sources: dict[str, str]
    env_name: str | None = None
    overrides_file: Path | None = None
    layers: list[Layer] = field(default_factory=list, repr=False)

    def rows(self) -> list[tuple[str, str, str]]:
        """(key path, display value, source) for every setting, secrets redacted."""
        return [(path, display_value(path, value), self.sources.get(path, "defaults")) for path, value in _leaves(self.settings.model_dump())]


def display_value(path: str, value: Any) -> str:
    if path in SECRET_PATHS:
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        return REDACTED if raw else '""'
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, str):
        return repr(value) if value == "" or value != value.strip() else value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _leaves(data: dict, prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def _read_yaml(path: Path, label: str) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError([Problem(label, f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}; fix the file")]) from None
    if not isinstance(data, dict):
        raise ConfigError([Problem(label, "must be a YAML mapping of sections (like the template); fix the file")])
    return data


def _unknown_keys(data: dict, known: dict, source: str, prefix: str = "") -> list[Problem]:
    problems = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in known:
            candidates = [k for k in known]
            suggestion = difflib.get_close_matches(str(key), candidates, n=1, cutoff=0.5)
            if not suggestion:  # maybe it belongs in another section
                everything = [p for p, _ in _leaves(_defaults_tree())]
                suggestion = difflib.get_close_matches(path, everything, n=1, cutoff=0.6)
                hint = f"did you mean {suggestion[0]}?" if suggestion else "see config/defaults.yml for the known settings"
            else:
                hint = f"did you mean {prefix}{suggestion[0]}?"
            problems.append(Problem(path, f"unknown setting; {hint}", source=source))
        elif isinstance(known[key], dict):
            if not isinstance(value, dict):
                problems.append(Problem(path, "must be a section (a mapping of settings), not a single value", display_value(path, value), source))
            else:
                problems.extend(_unknown_keys(value, known[key], source, path + "."))
    return problems


_DEFAULTS_CACHE: dict | None = None


def _defaults_tree() -> dict:
    global _DEFAULTS_CACHE
    if _DEFAULTS_CACHE is None:
        _DEFAULTS_CACHE = _read_yaml(DEFAULTS_FILE, str(DEFAULTS_FILE.relative_to(REPO_ROOT)))
    return _DEFAULTS_CACHE


def _set_path(data: dict, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


def _env_layer(environ: dict[str, str]) -> list[Layer]:
    defaults = dict(_leaves(_defaults_tree()))
    layers = []
    for var, path in ENV_VARS.items():
        if var in environ:
            layers.append(Layer(f"env {var}", _typed_env(path, environ[var], defaults)))
    for var, raw in sorted(environ.items()):
        if var.startswith(GENERIC_ENV_PREFIX):
            path = var[len(GENERIC_ENV_PREFIX):].lower().replace("__", ".")
            layers.append(Layer(f"env {var}", _typed_env(path, raw, defaults)))
    return layers


def _typed_env(path: str, raw: str, defaults: dict) -> dict:
    value: Any = raw
    if isinstance(defaults.get(path), list):
        value = [item.strip() for item in raw.split(",") if item.strip()]
    data: dict = {}
    _set_path(data, path, value)
    return data


def _merge(layers: list[Layer]) -> tuple[dict, dict[str, str]]:
    merged: dict = {}
    sources: dict[str, str] = {}

    def walk(target: dict, data: dict, source: str, prefix: str) -> None:
        for key, value in data.items():
            path = prefix + key
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                walk(target[key], value, source, path + ".")
            else:
                target[key] = copy.deepcopy(value)
                for leaf, _ in _leaves({key: value}, prefix) if isinstance(value, dict) else [(path, value)]:
                    sources[leaf] = source

    for layer in layers:
        walk(merged, layer.data, layer.source, "")
    return merged, sources


def _pydantic_problems(error: ValidationError, merged: dict, sources: dict[str, str]) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        path = ".".join(p for p in loc if not p.isdigit())
        full = ".".join(loc)
        raw: Any = merged
        for part in item["loc"]:
            try:
                raw = raw[part]
            except (KeyError, IndexError, TypeError):
                raw = None
                break
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "literal_error":
            message = message.replace("Input should be", "must be one of")
        elif item["type"].endswith("_parsing") or item["type"].endswith("_type"):
            message = message.replace("Input should be", "must be") + f"; {_type_hint(path)}"
        elif item["type"] in ("greater_than_equal", "less_than_equal"):
            message = message.replace("Input should be", "must be")
        elif item["type"] == "missing":
            message = "is required; add it to your overrides"
        problems.append(Problem(full, message, display_value(path, raw) if raw is not None else None, sources.get(path, "defaults")))
    return problems


def _type_hint(path: str) -> str:
    default = dict(_leaves(_defaults_tree())).get(path)
    if isinstance(default, bool):
        return "write true or false"
    if isinstance(default, int):
        return f"write a whole number such as {default}"
    if isinstance(default, list):
        return "write a list, e.g. [a, b] (or comma-separated in an environment variable)"
    return "write a quoted string"


def cross_checks(s: Settings, sources: dict[str, str]) -> list[Problem]:
    """Rules that involve more than one setting."""
    problems = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(path, message, display_value(path, s.get(path)), sources.get(path, "defaults")))

    if s.storage.kind == "efs" and s.efs.region != s.eb.region:
        add("efs.region", f"must equal eb.region ({s.eb.region}): instances mount EFS only in their own region")
    if s.efs.availability_zone and not s.efs.availability_zone.startswith(s.efs.region):
        add("efs.availability_zone", f"must be a zone of efs.region ({s.efs.region})")
    if s.ports.sifu == s.ports.jupyter:
        add("ports.jupyter", "must differ from ports.sifu; Sifu and Jupyter each need their own port")
    for name in ("sifu", "jupyter"):
        if getattr(s.ports, name) in (80, 443):
            add(f"ports.{name}", "must not be 80 or 443; those belong to the load balancer")
    if s.eb.min_instances > s.eb.max_instances:
        add("eb.min_instances", f"must not exceed eb.max_instances ({s.eb.max_instances})")
    if s.storage.kind == "s3" and not s.storage.s3_bucket:
        add("storage.s3_bucket", "is required when storage.kind is s3; name the bucket")
    if s.rds.mode != "none" and not s.rds.password.get_secret_value():
        add("rds.password", f"is required when rds.mode is {s.rds.mode}; set RDS_PASSWORD or rds.password")
    if s.rds.mode == "external" and not s.rds.host:
        add("rds.host", "is required when rds.mode is external; give the database host")
    if s.sifu.source == "git" and not s.sifu.git_url:
        add("sifu.git_url", "is required when sifu.source is git; give the https URL of the private repository")
    if s.web.https and not s.eb.certificate_arn and not s.web.public_host:
        add("web.https", "needs eb.certificate_arn (an ACM certificate for the load balancer) or your own TLS front with web.public_host")
    return problems


def load(
    env: str | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    overrides_file: Path | str | None = None,
    answers_file: Path | None = None,
) -> Loaded:
    """Load every layer, merge, validate. Raises ConfigError listing every problem at once."""
    environ = dict(os.environ if environ is None else environ)
    overrides_path = Path(overrides_file or environ.get("OVERRIDES") or DEFAULT_OVERRIDES)
    answers_path = answers_file or answers_file_path(environ)
    defaults = _defaults_tree()
    layers = [Layer("defaults", defaults)]
    problems: list[Problem] = []

    if answers_path.exists():
        saved = _read_yaml(answers_path, answers_path.name).get(env or "default") or {}
        layers.append(Layer(f"answers ({answers_path.name})", saved))

    overrides: dict = {}
    label = _label(overrides_path)
    if overrides_path.exists():
        overrides = _read_yaml(overrides_path, label)
    elif "OVERRIDES" in environ or overrides_file:
        raise ConfigError([Problem("OVERRIDES", f"file {label} does not exist; fix the path or unset OVERRIDES")])
    environments = overrides.pop("environments", None) or {}
    if not isinstance(environments, dict):
        raise ConfigError([Problem("environments", "must map environment names to settings", source=label)])
    layers.append(Layer(label, overrides))
    if env:
        if env not in environments:
            known = ", ".join(sorted(environments)) or "none defined"
            raise ConfigError([Problem("--env", f"no environment named {env!r} under `environments:` in {label} (known: {known})")])
        layers.append(Layer(f"{label} environments.{env}", environments[env] or {}))
    layers += _env_layer(environ)
    if flags:
        flag_data: dict = {}
        for path, value in flags.items():
            _set_path(flag_data, path, value)
        layers.append(Layer("flag", flag_data))

    for layer in layers[1:]:
        problems += _unknown_keys(layer.data, defaults, layer.source)
    if problems:
        raise ConfigError(problems)

    merged, sources = _merge(layers)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_pydantic_problems(exc, merged, sources)) from None
    problems = cross_checks(settings, sources)
    if problems:
        raise ConfigError(problems)
    return Loaded(settings, sources, env, overrides_path if overrides_path.exists() else None, layers)


def require(loaded: Loaded, paths: list[str], purpose: str) -> None:
    """Settings that may be empty in general but are needed for `purpose`."""
    missing = [p for p in paths if not _is_set(loaded.settings.get(p))]
    if missing:
        raise ConfigError([Problem(p, f"is required to {purpose}; set it in your overrides", source=loaded.sources.get(p, "defaults")) for p in missing])


def _is_set(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value not in ("", None, [])


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def answers_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where saved answers live: DEPLOY_ANSWERS_FILE when set (tests, several checkouts), else the repo's."""
    environ = os.environ if environ is None else environ
    return Path(environ["DEPLOY_ANSWERS_FILE"]) if environ.get("DEPLOY_ANSWERS_FILE") else ANSWERS_FILE


def save_answers(env: str | None, answers: dict[str, Any], path: Path | None = None) -> Path:
    """Remember the operator's answers (application, environment, platform) for the next run."""
    path = path or answers_file_path()
    data = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    section = data.setdefault(env or "default", {})
    for key, value in answers.items():
        _set_path(section, key, value)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Answers saved by `inv deploy`; git-ignored. Delete a line to be asked again.\n" + yaml.safe_dump(data, sort_keys=True))
    tmp.replace(path)
    return path
