"""What the generated files say about the deployment: container layout, public URLs and the contexts
of the templates. Shared by every generated file (deployer/render) and by the converge script
(deployer/remote/hooks.py), which renders the same nginx vhosts onto the instances.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from deployer import names
from deployer.config import Settings
from deployer.templating.engine import RenderError
from sifu.confine import CONTAINER_CAPABILITIES as CONFINED_CAPABILITIES

CONTAINER_NOTEBOOK_ROOT = "/notebooks"
CONTAINER_VENV = "/opt/venv"
CONTAINER_JUPYTER_CONFIG = "/etc/sifu/jupyter_server_config.py"
CONTAINER_STATE_DIR = "/var/lib/sifu"
CONTAINER_RUN_DIR = "/tmp"
CONTAINER_USERS = {"sifu": "sifu", "jupyter": "jupyter"}  # base-image/Dockerfile makes them
# The root kernel broker's socket (only Jupyter's group may enter its directory) and the per-uid kernel directories.
CONTAINER_KERNEL_BROKER_SOCKET = "/run/sifu-broker/broker.sock"
CONTAINER_KERNEL_DIR = "/run/sifu-kernels"
SERVICES = ("sifu", "jupyter")
# The capabilities the container's root processes keep (sifu/confine.py says why each): what local runs and the
# tests give the container with cap_drop ALL; on EB the image's entrypoint drops the rest itself.
CONTAINER_CAPABILITIES = CONFINED_CAPABILITIES
# Below this the app (Sifu, Jupyter, a few kernels) cannot run: a derived limit under it is an error, not a limit.
MIN_CONTAINER_MEMORY_MB = 512
# Jupyter's IOPub limits per kernel websocket (its defaults): a flooding cell's output is dropped past them.
IOPUB_MSG_RATE_LIMIT = 1000  # messages/s
IOPUB_DATA_RATE_LIMIT = 1_000_000  # bytes/s of stream output


@dataclass(frozen=True)
class Facts:
    """Values learned from AWS or the build, not from config. Offline renders use stand-ins."""

    account_id: str = "000000000000"
    image_uri: str = ""
    file_system_id: str = ""
    offline: bool = True
    # Our security group for the EB instances (EFS and RDS admit traffic only from it).
    instance_security_group: str = ""
    # Our security group for the load balancer (the instances admit the service ports from it).
    load_balancer_security_group: str = ""
    # Container variable -> SSM parameter ARN, as step 14a stored them; offline renders build the ARNs.
    secret_arns: tuple[tuple[str, str], ...] = ()
    # The managed database's address (rds.mode managed), once RDS has given it one.
    rds_endpoint: str = ""
    # The environment's CNAME: DescribeEnvironments' for an existing one, CheckDNSAvailability's
    # FullyQualifiedCNAME for the prefix a new one will be created with (step 9).
    cname: str = ""


def public_host(s: Settings, facts: Facts = Facts()) -> str:
    """The host students' browsers reach Sifu and Jupyter on: web.public_host, else the environment's CNAME as EB
    reported it. EB's CNAMEs are not built here (without a prefix EB adds a random part); only an offline render
    uses the form CheckDNSAvailability gives for our prefix, as a stand-in."""
    return s.web.public_host or facts.cname or f"{names.cname_prefix(s)}.{s.eb.region}.elasticbeanstalk.com"


def public_scheme(s: Settings) -> str:
    return "https" if s.web.https else "http"


def _origin(scheme: str, host_port: str) -> str:
    return f"{scheme}://{host_port}"


def frame_ancestors(s: Settings, facts: Facts = Facts()) -> list[str]:
    """Origins allowed to frame notebooks: the LMS, Studio, Sifu itself, and any extras."""
    edx_scheme = "https" if s.edx.force_ssl else "http"
    origins = []
    if s.edx.hostname:
        origins.append(_origin(edx_scheme, s.edx.hostname))
    if s.edx.studio_hostname:
        origins.append(_origin(edx_scheme, s.edx.studio_hostname))
    origins.append(sifu_url(s, facts))
    origins += s.web.frame_ancestors
    return list(dict.fromkeys(origins))


def sifu_url(s: Settings, facts: Facts = Facts()) -> str:
    return f"{public_scheme(s)}://{public_host(s, facts)}:{s.ports.sifu}"


def jupyter_url(s: Settings, facts: Facts = Facts()) -> str:
    return f"{public_scheme(s)}://{public_host(s, facts)}:{s.ports.jupyter}"


def container_memory_mb(s: Settings, instance_memory_mb: int) -> int:
    """The app container's memory limit (swap included): remote.container_memory_mb, or when that is 0 the
    instance's memory minus remote.host_memory_reserve_mb. Converge's shell computes the same on the instance."""
    memory = s.remote.container_memory_mb or instance_memory_mb - s.remote.host_memory_reserve_mb
    if memory < MIN_CONTAINER_MEMORY_MB:
        raise RenderError(f"the app container would get {memory} MiB ({instance_memory_mb} MiB on the instance, "
                          f"{s.remote.host_memory_reserve_mb} MiB reserved); lower remote.host_memory_reserve_mb or set "
                          f"remote.container_memory_mb (at least {MIN_CONTAINER_MEMORY_MB})")
    return memory


def secret_parameter_names(s: Settings) -> dict[str, str]:
    """Container variable -> SSM parameter name for every secret the container needs."""
    variables = ["SIFU_SECRET_KEY", "SIFU_SERVICE_TOKEN", "EDX_OAUTH2_CLIENT_SECRET"]
    if s.rds.mode != "none":
        variables.append("RDS_PASSWORD")
    return {variable: names.secret_parameter(s, variable) for variable in variables}


def container_environment(s: Settings, facts: Facts) -> dict[str, str]:
    """Non-secret variables the container gets from Elastic Beanstalk."""
    env = {
        "EDX_HOSTNAME": s.edx.hostname,
        "EDX_OAUTH2_CLIENT_ID": s.edx.oauth2_client_id,
        "EDX_OAUTH2_CLIENT_REDIRECT_URI": s.edx.oauth2_redirect_uri,
        "EDX_OAUTH2_FORCE_SSL": "true" if s.edx.force_ssl else "false",
        "SIFU_NOTEBOOK_ROOT": CONTAINER_NOTEBOOK_ROOT,
        "SIFU_JUPYTER_URL": jupyter_url(s, facts),
        # Space-separated: EB refuses commas in environment property values (EB-ENV-PROPS-LIMITS).
        "SIFU_STAFF_USERNAMES": " ".join(s.sifu.staff_usernames),
        "SIFU_TOKEN_TTL": str(s.sifu.token_ttl),
        "SIFU_FRAME_ANCESTORS": " ".join(frame_ancestors(s, facts)),
        "SIFU_COOKIE_SECURE": "true" if s.web.https else "false",
    }
    volume_id = facts.file_system_id or s.efs.file_system_id
    if s.storage.kind == "efs" and volume_id:
        env["SIFU_VOLUME_ID"] = volume_id
    elif s.storage.kind == "s3":
        env["SIFU_VOLUME_ID"] = f"s3://{s.storage.s3_bucket}"
    if s.rds.mode != "none":
        env.update(RDS_DB_NAME=s.rds.db_name, RDS_PORT=str(s.rds.port), RDS_USERNAME=s.rds.username)
        if s.rds.mode == "external":
            env["RDS_HOSTNAME"] = s.rds.host.split(":")[0]
        elif facts.rds_endpoint:
            env["RDS_HOSTNAME"] = facts.rds_endpoint
    check_environment_properties(env)
    return env


# What EB accepts in an environment property value: at most 256 characters of letters, digits, white space
# and _ . : / = + \ - @ ' " (no comma); all key=value strings together at most 4,096 bytes (EB-ENV-PROPS-LIMITS).
PROPERTY_VALUE = re.compile(r"[A-Za-z0-9\s_.:/=+\\\-@'\"]*")
PROPERTY_VALUE_MAX = 256
PROPERTIES_MAX_BYTES = 4096
_SETTING_OF = {"SIFU_FRAME_ANCESTORS": "web.frame_ancestors", "SIFU_STAFF_USERNAMES": "sifu.staff_usernames"}


def check_environment_properties(env: dict[str, str]) -> None:
    """Refuse, naming the variable, what EB would refuse or cut: a comma or other character outside its set, a
    value over 256 characters, or more than 4,096 bytes in all."""
    for name, value in env.items():
        where = f"{name}" + (f" (from {_SETTING_OF[name]})" if name in _SETTING_OF else "")
        if len(value) > PROPERTY_VALUE_MAX:
            raise RenderError(f"{where} is {len(value)} characters; Elastic Beanstalk allows {PROPERTY_VALUE_MAX} "
                              "per environment property: shorten it")
        if not PROPERTY_VALUE.fullmatch(value):
            bad = sorted({ch for ch in value if not PROPERTY_VALUE.fullmatch(ch)})
            raise RenderError(f"{where} contains {' '.join(map(repr, bad))}, which Elastic Beanstalk does not "
                              "allow in an environment property value")
    total = sum(len(f"{k}={v}".encode()) for k, v in env.items())
    if total > PROPERTIES_MAX_BYTES:
        raise RenderError(f"the environment properties take {total} bytes; Elastic Beanstalk allows "
                          f"{PROPERTIES_MAX_BYTES} in all: shorten web.frame_ancestors or sifu.staff_usernames")


def secret_arns(s: Settings, facts: Facts) -> dict[str, str]:
    """Container variable -> ARN for environmentsecrets: the stored parameters' real ARNs when known."""
    known = dict(facts.secret_arns)
    return {name: known.get(name) or f"arn:aws:ssm:{s.eb.region}:{facts.account_id}:parameter{param}"
            for name, param in secret_parameter_names(s).items()}


def processes(s: Settings) -> list[dict[str, Any]]:
    return [
        {"name": "sifu", "port": s.ports.sifu, "health_path": "/health", "sticky": False},
        {"name": "jupyter", "port": s.ports.jupyter, "health_path": "/api", "sticky": True},
    ]


def upstream_name(service: str) -> str:
    return f"sifu_{service}_app"


def vhost_context(s: Settings, service: str, log_dir: str = "/var/log/nginx", peers: bool = True) -> dict[str, Any]:
    """`peers`: Jupyter's vhost follows a student's kernel to the instance that runs it (ports.peer); off where
    there is one machine and nothing else may take the port (local runs). Jupyter's vhost compresses the front
    end's files (Notebook 7: ~5 MB of scripts on a student's first visit)."""
    return {
        "service": service,
        "port": getattr(s.ports, service),
        "peer_port": s.ports.peer if peers and service == "jupyter" else None,
        "compress_static": service == "jupyter",
        "upstream": upstream_name(service),
        "max_body_mb": s.web.max_body_mb,
        "read_timeout": s.web.read_timeout,
        "log_dir": log_dir,
    }


def upstream_context(s: Settings, address: str) -> dict[str, Any]:
    return {"upstreams": [{"name": upstream_name(svc), "address": address, "port": getattr(s.ports, svc)} for svc in SERVICES]}


def kernel_broker_program(s: Settings, python: str, notebook_root: str) -> dict[str, Any]:
    """The root kernel broker (sifu/kernel_broker.py): the image's only program that stays root."""
    return {
        "name": "kernel-broker",
        "command": f"{python} -m sifu.launch kernel-broker -- {python} -m sifu.kernel_broker --socket {CONTAINER_KERNEL_BROKER_SOCKET} --notebook-root {notebook_root} "
                   f"--kernel-dir {CONTAINER_KERNEL_DIR} --sifu-url http://127.0.0.1:{s.ports.sifu} "
                   f"--max-disk-mib {s.jupyter.max_disk_mib_per_student} --max-files {s.jupyter.max_files_per_student} "
                   f"--disk-check-interval {s.jupyter.disk_check_interval}",
        "directory": "/",
        "startsecs": 1,
        "stopsignal": "TERM",
    }


def supervisord_context(s: Settings, python: str, jupyter_config: str, run_dir: str, directory: str,
                        users: dict[str, str] | None = None) -> dict[str, Any]:
    # In the image supervisord runs as root and each program becomes its own service user (sifu/launch.py); the
    # kernel broker stays root there. Process mode (no users) runs no broker: it could not change uids.
    as_user = {name: f" --user {user}" for name, user in (users or {}).items()}
    broker = [kernel_broker_program(s, python, directory)] if users else []
    return {
        "run_dir": run_dir,
        "programs": broker + [
            {
                "name": "sifu",
                "command": f"{python} -m sifu.launch sifu{as_user.get('sifu', '')} -- {python} -m sifu --host 0.0.0.0 --port {s.ports.sifu} --workers {s.sifu.workers}",
                "directory": directory,
                "startsecs": 2,
                "stopsignal": "TERM",
            },
            {
                "name": "jupyter",
                "command": f"{python} -m sifu.launch jupyter{as_user.get('jupyter', '')} --sifu-url http://127.0.0.1:{s.ports.sifu} -- {python} -m jupyter_server --config={jupyter_config}",
                "directory": directory,
                "startsecs": 2,
                "stopsignal": "TERM",
            },
        ],
    }


def jupyter_context(s: Settings, notebook_root: str, kernel_broker_socket: str | None) -> dict[str, Any]:
    """`kernel_broker_socket` None is the deliberate process-mode choice: kernels run as Jupyter's own user."""
    return {
        "kernel_broker_socket": kernel_broker_socket,
        "port": s.ports.jupyter,
        "notebook_root": notebook_root,
        "cull_idle_timeout": s.jupyter.cull_idle_timeout,
        "cull_interval": s.jupyter.cull_interval,
        "max_kernels_per_student": s.jupyter.max_kernels_per_student,
        "iopub_msg_rate_limit": IOPUB_MSG_RATE_LIMIT,
        "iopub_data_rate_limit": IOPUB_DATA_RATE_LIMIT,
    }


def image_uri(s: Settings, facts: Facts) -> str:
    return facts.image_uri or f"{facts.account_id}.dkr.ecr.{s.ecr.region}.amazonaws.com/{s.ecr.repository}:latest"
