"""Every generated file: one jinja2 template each, rendered strictly, validated, then written.

The render tree has three parts:
  bundle/  what goes into the Elastic Beanstalk source bundle (Dockerrun, .ebextensions, .platform)
  image/   what the Dockerfile copies into the image (supervisord.conf, jupyter_server_config.py)
  eb/      the environment's option settings, applied through the API by `inv deploy`
  nginx/   the vhosts, as the converge script writes them on each instance
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from deployer import REPO_ROOT
from deployer.config import Settings

CONTAINER_NOTEBOOK_ROOT = "/notebooks"
CONTAINER_VENV = "/opt/venv"
CONTAINER_JUPYTER_CONFIG = "/etc/sifu/jupyter_server_config.py"
CONTAINER_STATE_DIR = "/var/lib/sifu"
CONTAINER_RUN_DIR = "/tmp"
CONTAINER_USERS = {"sifu": "sifu", "jupyter": "jupyter"}  # base-image/Dockerfile makes them
HOOK_NAME = "10-converge.sh"
SERVICES = ("sifu", "jupyter")
VALIDATION_CACHE = REPO_ROOT / "build" / "validated"


class RenderError(Exception):
    """A template failed to render or its output failed validation; nothing was written."""


@dataclass(frozen=True)
class Facts:
    """Values learned from AWS or the build, not from config. Offline renders use stand-ins."""

    account_id: str = "000000000000"
    image_uri: str = ""
    file_system_id: str = ""
    offline: bool = True
    # Our security group for the EB instances (EFS and RDS admit traffic only from it).
    instance_security_group: str = ""
    # Container variable -> SSM parameter ARN, as step 14a stored them; offline renders build the ARNs.
    secret_arns: tuple[tuple[str, str], ...] = ()
    # The managed database's address (rds.mode managed), once RDS has given it one.
    rds_endpoint: str = ""


@dataclass(frozen=True)
class Rendered:
    path: str
    content: str
    kind: str
    mode: int = 0o644
    template: str = ""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


@dataclass
class Tree:
    files: dict[str, Rendered] = field(default_factory=dict)
    validations: list[str] = field(default_factory=list)

    def under(self, prefix: str) -> dict[str, Rendered]:
        return {path[len(prefix):]: f for path, f in self.files.items() if path.startswith(prefix)}


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(REPO_ROOT)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_template(template: str, context: dict[str, Any]) -> str:
    import jinja2

    try:
        return _environment().get_template(template).render(**context)
    except jinja2.TemplateError as exc:
        where = f" line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        raise RenderError(f"{template}{where}: {exc}") from None


# --- context -------------------------------------------------------------------------------------


def public_host(s: Settings) -> str:
    """The host students' browsers reach Sifu and Jupyter on."""
    return s.web.public_host or f"{s.eb.cname_prefix or s.eb.environment}.{s.eb.region}.elasticbeanstalk.com"


def public_scheme(s: Settings) -> str:
    return "https" if s.web.https else "http"


def _origin(scheme: str, host_port: str) -> str:
    return f"{scheme}://{host_port}"


def frame_ancestors(s: Settings) -> list[str]:
    """Origins allowed to frame notebooks: the LMS, Studio, Sifu itself, and any extras."""
    edx_scheme = "https" if s.edx.force_ssl else "http"
    origins = []
    if s.edx.hostname:
        origins.append(_origin(edx_scheme, s.edx.hostname))
    if s.edx.studio_hostname:
        origins.append(_origin(edx_scheme, s.edx.studio_hostname))
    origins.append(sifu_url(s))
    origins += s.web.frame_ancestors
    return list(dict.fromkeys(origins))


def sifu_url(s: Settings) -> str:
    return f"{public_scheme(s)}://{public_host(s)}:{s.ports.sifu}"


def jupyter_url(s: Settings) -> str:
    return f"{public_scheme(s)}://{public_host(s)}:{s.ports.jupyter}"


def secret_parameter_names(s: Settings) -> dict[str, str]:
    """Container variable -> SSM parameter name for every secret the container needs."""
    prefix = f"/{s.project.name}/{s.eb.environment}"
    names = {
        "SIFU_SECRET_KEY": f"{prefix}/SIFU_SECRET_KEY",
        "EDX_OAUTH2_CLIENT_SECRET": f"{prefix}/EDX_OAUTH2_CLIENT_SECRET",
    }
    if s.rds.mode != "none":
        names["RDS_PASSWORD"] = f"{prefix}/RDS_PASSWORD"
    return names


def container_environment(s: Settings, facts: Facts) -> dict[str, str]:
    """Non-secret variables the container gets from Elastic Beanstalk."""
    env = {
        "EDX_HOSTNAME": s.edx.hostname,
        "EDX_OAUTH2_CLIENT_ID": s.edx.oauth2_client_id,
        "EDX_OAUTH2_CLIENT_REDIRECT_URI": s.edx.oauth2_redirect_uri,
        "EDX_OAUTH2_FORCE_SSL": "true" if s.edx.force_ssl else "false",
        "SIFU_NOTEBOOK_ROOT": CONTAINER_NOTEBOOK_ROOT,
        "SIFU_JUPYTER_URL": jupyter_url(s),
        "SIFU_STAFF_USERNAMES": ",".join(s.sifu.staff_usernames),
        "SIFU_TOKEN_TTL": str(s.sifu.token_ttl),
        "SIFU_FRAME_ANCESTORS": " ".join(frame_ancestors(s)),
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
    return env


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


def vhost_context(s: Settings, service: str, log_dir: str = "/var/log/nginx") -> dict[str, Any]:
    return {
        "service": service,
        "port": getattr(s.ports, service),
        "upstream": upstream_name(service),
        "max_body_mb": s.web.max_body_mb,
        "read_timeout": s.web.read_timeout,
        "log_dir": log_dir,
    }


def upstream_context(s: Settings, address: str) -> dict[str, Any]:
    return {"upstreams": [{"name": upstream_name(svc), "address": address, "port": getattr(s.ports, svc)} for svc in SERVICES]}


def supervisord_context(s: Settings, python: str, jupyter_config: str, run_dir: str, directory: str,
                        users: dict[str, str] | None = None) -> dict[str, Any]:
    # In the image supervisord runs as root and each program becomes its own service user (sifu/launch.py).
    as_user = {name: f" --user {user}" for name, user in (users or {}).items()}
    return {
        "run_dir": run_dir,
        "programs": [
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


def jupyter_context(s: Settings, notebook_root: str) -> dict[str, Any]:
    return {
        "port": s.ports.jupyter,
        "notebook_root": notebook_root,
        "cull_idle_timeout": s.jupyter.cull_idle_timeout,
        "cull_interval": s.jupyter.cull_interval,
    }


def image_uri(s: Settings, facts: Facts) -> str:
    return facts.image_uri or f"{facts.account_id}.dkr.ecr.{s.ecr.region}.amazonaws.com/{s.ecr.repository}:latest"


# --- the files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    path: str
    template: str
    kind: str
    context: Callable[[], dict[str, Any]]
    mode: int = 0o644


def outputs(s: Settings, facts: Facts) -> list[Output]:
    from deployer.remote import hooks

    procs = processes(s)
    secrets = secret_arns(s, facts)
    files = [
        Output("image/supervisord.conf", "supervisord.conf.j2", "ini",
               lambda: supervisord_context(s, f"{CONTAINER_VENV}/bin/python", CONTAINER_JUPYTER_CONFIG, CONTAINER_RUN_DIR, CONTAINER_NOTEBOOK_ROOT,
                                           CONTAINER_USERS)),
        Output("image/jupyter_server_config.py", "jupyter_server_config.py.j2", "python",
               lambda: jupyter_context(s, CONTAINER_NOTEBOOK_ROOT)),
        Output("bundle/Dockerrun.aws.json", "Dockerrun.aws.json.j2", "json",
               lambda: {"image_uri": image_uri(s, facts), "ports": s.ports, "mount_point": s.efs.mount_point,
                        "container_notebook_root": CONTAINER_NOTEBOOK_ROOT}),
        Output("eb/option-settings.yml", ".ebextensions/option-settings.yml.j2", "ebextensions",
               lambda: {"eb": s.eb, "processes": procs, "environment": container_environment(s, facts), "secrets": secrets,
                        "instance_security_group": facts.instance_security_group}),
        Output("bundle/.ebextensions/01-resources.config", ".ebextensions/resources.config.j2", "cloudformation",
               lambda: {"processes": procs}),
    ]
    for service in SERVICES:
        # The converge script carries these to the instances; rendered here too so `nginx -t`
        # checks them before anything is deployed.
        files.append(Output(f"nginx/{service}.conf", ".nginx/vhost.conf.j2", "nginx",
                            lambda service=service: vhost_context(s, service)))
    hook = lambda: hooks.script_context(s, facts)  # noqa: E731
    for directory in (".platform/hooks/postdeploy", ".platform/confighooks/postdeploy"):
        files.append(Output(f"bundle/{directory}/{HOOK_NAME}", ".platform/converge.sh.j2", "shell", hook, 0o755))
    return files


def option_settings(tree: Tree) -> list[dict[str, str]]:
    """The rendered option settings as the API takes them: Namespace, OptionName, Value."""
    import yaml

    data = yaml.safe_load(tree.files["eb/option-settings.yml"].content)["option_settings"]
    return [{"Namespace": namespace, "OptionName": name, "Value": _option_value(value)}
            for namespace, options in data.items() for name, value in options.items()]


def _option_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_all(s: Settings, facts: Facts | None = None, validate: bool = True) -> Tree:
    facts = facts or Facts()
    tree = Tree()
    for out in outputs(s, facts):
        tree.files[out.path] = Rendered(out.path, render_template(out.template, out.context()), out.kind, out.mode, out.template)
    if validate:
        tree.validations = validate_tree(tree, s)
    return tree


# --- validation ---------------------------------------------------------------------------------------


def validate_tree(tree: Tree, s: Settings) -> list[str]:
    """Parse or lint every file; returns what was checked. Raises RenderError on the first failure."""
    done = []
    for f in tree.files.values():
        if f.kind == "json":
            _parse(f, lambda text: json.loads(text))
        elif f.kind in ("ebextensions", "cloudformation"):
            _parse(f, _load_yaml)
        elif f.kind == "python":
            _parse(f, lambda text: compile(text, f.path, "exec"))
        elif f.kind == "ini":
            _parse(f, _load_ini)
    done.append("parsed JSON, YAML, INI and Python")
    nginx_files = [f for f in tree.files.values() if f.kind == "nginx"]
    if nginx_files:
        vhosts = {Path(f.path).name: f.content for f in nginx_files}
        done.append(check_nginx(vhosts, render_template(".nginx/upstream.conf.j2", upstream_context(s, "127.0.0.1"))))
    shell = [f for f in tree.files.values() if f.kind == "shell"]
    if shell:
        done.append(check_shell(shell))
    cfn = [f for f in tree.files.values() if f.kind == "cloudformation"]
    if cfn:
        done.append(check_cloudformation(cfn))
    return done


def _parse(f: Rendered, parser: Callable[[str], Any]) -> None:
    try:
        parser(f.content)
    except Exception as exc:  # every parser has its own error type; all mean the same here
        raise RenderError(f"{f.path} (from {f.template}) does not parse as {f.kind}: {exc}") from None


def _load_yaml(text: str) -> Any:
    import yaml

    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("expected a mapping at the top level")
    return data


def _load_ini(text: str) -> Any:
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def _cached(kind: str, contents: list[str], check: Callable[[], str]) -> str:
    """Linters are slow; remember a pass by content hash so an unchanged render is quick."""
    digest = hashlib.sha256("\0".join([kind, *contents]).encode()).hexdigest()
    stamp = VALIDATION_CACHE / digest
    if stamp.exists():
        return stamp.read_text()
    result = check()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(result)
    return result


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def nginx_test(prefix: Path, conf: Path) -> subprocess.CompletedProcess:
    nginx = nginx_binary()
    assert nginx
    return subprocess.run([nginx, "-t", "-q", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)


def scratch_nginx_conf(prefix: Path, includes: list[Path], listen_free: bool = True) -> Path:
    """A minimal nginx.conf that includes the given files in its http block, all paths inside prefix."""
    for sub in ("logs", "tmp", "html"):  # html: nginx checks the root exists before variable log paths
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    lines = [
        # workers of a root master run as nobody, who cannot enter private temp dirs
        *(["user root root;"] if os.geteuid() == 0 else []),
        "daemon off;",
        f"pid {prefix}/nginx.pid;",
        f"error_log {prefix}/logs/error.log;",
        "events { worker_connections 256; }",
        "http {",
        f"    client_body_temp_path {prefix}/tmp/body;",
        f"    proxy_temp_path {prefix}/tmp/proxy;",
        f"    fastcgi_temp_path {prefix}/tmp/fastcgi;",
        f"    uwsgi_temp_path {prefix}/tmp/uwsgi;",
        f"    scgi_temp_path {prefix}/tmp/scgi;",
        f"    access_log {prefix}/logs/access.log;",
        *[f"    include {path};" for path in includes],
        "}",
    ]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def check_nginx(vhosts: dict[str, str], upstream: str) -> str:
    """nginx -t over the vhosts (name -> text) plus an upstream, in a scratch prefix."""
    if not nginx_binary():
        return "nginx not installed here: nginx -t skipped (install nginx to check vhosts before deploying)"

    def run() -> str:
        with tempfile.TemporaryDirectory(prefix="sifu-nginx-") as tmp:
            prefix = Path(tmp)
            logs = prefix / "logs"
            paths = []
            for name, text in {"upstream.conf": upstream, **vhosts}.items():
                path = prefix / name
                path.write_text(text.replace("/var/log/nginx", str(logs)))
                paths.append(path)
            (logs / "healthd").mkdir(parents=True, exist_ok=True)
            result = nginx_test(prefix, scratch_nginx_conf(prefix, paths))
            if result.returncode != 0:
                message = result.stderr.strip().replace(f"{prefix}/", "")
                raise RenderError(f"nginx -t rejected the rendered vhosts:\n{message}")
        return "nginx -t passed"

    return _cached("nginx", [upstream, *vhosts.values()], run)


def check_shell(files: list[Rendered]) -> str:
    def run() -> str:
        checked = []
        with tempfile.TemporaryDirectory(prefix="sifu-sh-") as tmp:
            for f in files:
                path = Path(tmp) / Path(f.path).name
                path.write_text(f.content)
                result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
                if result.returncode != 0:
                    raise RenderError(f"{f.path}: bash -n failed: {result.stderr.strip()}")
                shellcheck = _tool("shellcheck")
                if shellcheck:
                    result = subprocess.run([shellcheck, "-S", "warning", str(path)], capture_output=True, text=True)
                    if result.returncode != 0:
                        raise RenderError(f"{f.path}: shellcheck failed:\n{result.stdout.strip()}")
                    checked.append("shellcheck")
        return "bash -n passed" + (", shellcheck passed" if checked else " (shellcheck not installed)")

    return _cached("shell", [f.content for f in files], run)


def check_cloudformation(files: list[Rendered]) -> str:
    """cfn-lint the Resources as Elastic Beanstalk merges them: into a stack that has its own groups."""
    linter = _tool("cfn-lint")
    if not linter:
        return "cfn-lint not installed here: CloudFormation resources not linted"

    def run() -> str:
        import yaml

        resources = {
            "AWSEBSecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "stands in for the EB instance group"}},
            "AWSEBLoadBalancerSecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "stands in for the EB load balancer group"}},
        }
        for f in files:
            resources.update(yaml.safe_load(f.content).get("Resources", {}))
        with tempfile.TemporaryDirectory(prefix="sifu-cfn-") as tmp:
            path = Path(tmp) / "template.yaml"
            path.write_text(yaml.safe_dump({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}))
            result = subprocess.run([linter, "--regions", "us-east-1", "--", str(path)], capture_output=True, text=True)
            if result.returncode not in (0, 4, 8, 12):  # warnings (4) and info (8) do not fail
                raise RenderError(f"cfn-lint rejected .ebextensions resources:\n{result.stdout.strip()}{result.stderr.strip()}")
        return "cfn-lint passed"

    return _cached("cfn", [f.content for f in files], run)


def _tool(name: str) -> str | None:
    import sys

    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


# --- writing ------------------------------------------------------------------------------------------


def write_tree(tree: Tree, out: Path) -> list[Path]:
    """Write every file atomically with its mode; stale files from an earlier render are removed."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    wanted = {out / path for path in tree.files}
    for existing in sorted(out.rglob("*"), reverse=True):
        if existing.is_file() and existing not in wanted:
            existing.unlink()
        elif existing.is_dir() and not any(existing.iterdir()):
            existing.rmdir()
    for path, f in sorted(tree.files.items()):
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(f.content)
        os.chmod(tmp, f.mode)
        tmp.replace(target)
        written.append(target)
    return written
