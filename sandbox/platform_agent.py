"""What the Elastic Beanstalk Docker platform (Amazon Linux 2023) does on an instance when it deploys, run as root
inside a sandbox instance host (sandbox/instance_host.py):

    python -m sandbox.platform_agent deploy MANIFEST      # an application deployment (a new version)
    python -m sandbox.platform_agent configure MANIFEST   # a configuration deployment (settings only)

In the documented order (EB-INSTANCE-WORKFLOW): credentials from the metadata service (IMDSv2), the source bundle
from S3 with them, extracted to the staging directory; `.platform/hooks/prebuild/*`; the bundle's
`.platform/nginx` files into nginx (`nginx -t`); ECR login (GetAuthorizationToken) and `docker pull` of the
Dockerrun v1 image (DOCKERRUN-V1); `.platform/hooks/predeploy/*`; the container replaced, with the environment
properties and the environment secrets read from SSM (IAM-ENVSECRETS-SSM), its first port behind nginx's `docker`
upstream (EB-DOCKER-PROXY-FIRST-PORT); staging becomes `/var/app/current`; `.platform/hooks/postdeploy/*`. Hooks
(EB-HOOKS-ROOT-EXEC): executable files, lexical order, as root, cwd the staging directory (prebuild, predeploy)
or the application directory (postdeploy); one that fails fails the deployment. A configuration deployment
runs `.platform/confighooks/*` at the same steps and restarts the container with the new environment.

Until the container is replaced, a failure leaves the running container and nginx as they were. The engine
writes /var/log/eb-engine.log and /var/log/eb-hooks.log; its last stdout line is a JSON result with EB's
messages on failure (`Result`). Not modelled: `.ebextensions` (commands, container_commands, option settings
files), Buildfile/Procfile, `Authentication` in Dockerrun, docker compose, log rotation and upload, healthd.

The builders (Manifest, Dockerrun, docker_run_argv, ordered_hooks, nginx files, failure messages) are pure and
tested as such (tests/unit/sandbox/test_platform_agent.py); `Engine` is the one executor.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

APP_CURRENT = Path("/var/app/current")
APP_STAGING = Path("/var/app/staging")
DEPLOYMENT = Path("/opt/elasticbeanstalk/deployment")
ENGINE_LOG = Path("/var/log/eb-engine.log")
HOOKS_LOG = Path("/var/log/eb-hooks.log")
NGINX = Path("/etc/nginx")
# The host directory the platform maps to Dockerrun's `Logging` directory.
CONTAINER_LOGS = Path("/var/log/eb-docker/containers/eb-current-app")
UPSTREAM_FILE = "conf.d/elasticbeanstalk-nginx-docker-upstream.conf"
APPLICATION_LOCATION = "conf.d/elasticbeanstalk/00_application.conf"
IMDS = "http://169.254.169.254"
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
_PHASE_NAMES = {"prebuild": "PreBuild", "predeploy": "PreDeploy", "postdeploy": "PostDeploy"}
FAILED = "Instance deployment failed. For details, see 'eb-engine.log'."


# --- what the sandbox hands the engine ---------------------------------------------------------------------------

@dataclass
class Manifest:
    """One deployment to one instance, as the sandbox writes it into the host (JSON)."""

    endpoint_url: str  # the emulated AWS as the host reaches it
    region: str
    bucket: str
    key: str
    version_label: str
    properties: dict[str, str] = field(default_factory=dict)  # aws:elasticbeanstalk:application:environment
    secrets: dict[str, str] = field(default_factory=dict)  # ...:environmentsecrets: name -> SSM parameter ARN

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls(**json.loads(text))


@dataclass
class Dockerrun:
    """Dockerrun.aws.json version 1, the keys the platform acts on."""

    image: str
    update: bool = True
    ports: list[tuple[int, int | None]] = field(default_factory=list)  # (ContainerPort, HostPort or None)
    volumes: list[tuple[str, str]] = field(default_factory=list)  # (HostDirectory, ContainerDirectory)
    logging: str | None = None
    command: list[str] = field(default_factory=list)
    entrypoint: str | None = None

    @classmethod
    def parse(cls, text: str) -> Dockerrun:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeploymentError("Docker Specific Build Application", f"Dockerrun.aws.json is not valid JSON: {exc}")
        if str(data.get("AWSEBDockerrunVersion")) != "1":
            raise DeploymentError("Docker Specific Build Application",
                                  "Dockerrun.aws.json: only AWSEBDockerrunVersion 1 is supported on this platform")
        image = (data.get("Image") or {}).get("Name")
        if not image:
            raise DeploymentError("Docker Specific Build Application", "Dockerrun.aws.json: Image.Name is required")
        ports = [(int(p["ContainerPort"]), int(p["HostPort"]) if p.get("HostPort") else None)
                 for p in data.get("Ports") or []]
        if not ports:
            raise DeploymentError("Docker Specific Build Application",
                                  "Dockerrun.aws.json: Ports is required with Image")
        command = data.get("Command")
        return cls(image=image, update=str(data["Image"].get("Update", "true")).lower() != "false", ports=ports,
                   volumes=[(v["HostDirectory"], v["ContainerDirectory"]) for v in data.get("Volumes") or []],
                   logging=data.get("Logging"), entrypoint=data.get("Entrypoint"),
                   command=command.split() if isinstance(command, str) else list(command or []))


class DeploymentError(Exception):
    """A step failed: `step` is the engine's instruction, `message` what eb-engine.log says after "Error: "."""

    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step, self.message = step, message


@dataclass
class Result:
    """The engine's answer to the sandbox (the last stdout line, JSON)."""

    ok: bool
    command: str
    version_label: str
    container_id: str | None = None
    step: str | None = None
    error: str | None = None
    events: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


# --- pure builders -------------------------------------------------------------------------------------------

def failure_events(error: DeploymentError, return_code: int = 1) -> list[str]:
    """EB's two ERROR events for a failed instance deployment (the sandbox adds "[Instance: ID] ")."""
    return [FAILED, f"Command failed on instance. Return code: {return_code} Output: {error.message}"]


def ordered_hooks(names: Iterable[str]) -> list[str]:
    """Hook files run in lexicographic order of their names."""
    return sorted(names)


def hook_failure(relative: str, detail: str) -> str:
    return f"Command {relative} failed with error {detail}"


def docker_run_argv(spec: Dockerrun, env_names: Iterable[str], hosts: dict[str, str],
                    labels: dict[str, str]) -> list[str]:
    """`docker run` for the application container. Variables are passed by name only (`-e NAME`): their values
    come from the CLI's own environment, so they never appear on a command line."""
    argv = [DOCKER, "run", "-d"]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    for name in env_names:
        argv += ["-e", name]
    for host_dir, container_dir in spec.volumes:
        argv += ["-v", f"{host_dir}:{container_dir}"]
    if spec.logging:
        argv += ["-v", f"{CONTAINER_LOGS}:{spec.logging}"]
    for container_port, host_port in spec.ports:
        if host_port:  # published only when Dockerrun names a HostPort (EB-DOCKER-HOSTPORT is unsettled)
            argv += ["-p", f"{host_port}:{container_port}"]
    for name, address in sorted(hosts.items()):
        argv += ["--add-host", f"{name}:{address}"]
    if spec.entrypoint:
        argv += ["--entrypoint", spec.entrypoint]
    return argv + [spec.image, *spec.command]


def container_environment(properties: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """The container's variables: environment properties, then the resolved secrets."""
    return {**properties, **secrets}


def nginx_conf() -> str:
    """The platform's /etc/nginx/nginx.conf: conf.d/*.conf in the http context, conf.d/elasticbeanstalk/*.conf
    inside the default server on port 80 (EB-PLATFORM-NGINX-CONFD)."""
    return """\
# Elastic Beanstalk Nginx Configuration File (sandbox stand-in for the Docker platform's)
user www-data;
worker_processes auto;
error_log /var/log/nginx/error.log;
pid /var/run/nginx.pid;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"';
    access_log /var/log/nginx/access.log main;
    map $http_upgrade $connection_upgrade { default "upgrade"; "" ""; }
    include conf.d/*.conf;
    server {
        listen 80 default_server;
        access_log /var/log/nginx/access.log main;
        client_header_timeout 60;
        client_body_timeout 60;
        keepalive_timeout 60;
        # Include the Elastic Beanstalk generated locations
        include conf.d/elasticbeanstalk/*.conf;
    }
}
"""


def application_location() -> str:
    return """\
location / {
    proxy_pass http://docker;
    proxy_http_version 1.1;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
}
"""


def upstream_conf(address: str | None, port: int | None) -> str:
    """nginx's `docker` upstream: the container's first port, or a server marked down before any container."""
    server = f"server {address}:{port};" if address and port else "server 127.0.0.1:9 down;"
    return f"upstream docker {{\n    {server}\n    keepalive 256;\n}}\n"


def platform_nginx_files(address: str | None = None, port: int | None = None) -> dict[str, str]:
    """The platform's own nginx files, relative to /etc/nginx."""
    return {"nginx.conf": nginx_conf(), APPLICATION_LOCATION: application_location(),
            UPSTREAM_FILE: upstream_conf(address, port)}


def bundle_nginx_files(app: Path) -> dict[str, Path]:
    """The bundle's proxy files, by their place under /etc/nginx: .platform/nginx/nginx.conf and conf.d/**.conf."""
    source = app / ".platform" / "nginx"
    files = {}
    if (source / "nginx.conf").is_file():
        files["nginx.conf"] = source / "nginx.conf"
    for path in sorted((source / "conf.d").rglob("*.conf")) if (source / "conf.d").is_dir() else []:
        files[str(path.relative_to(source))] = path
    return files


def secret_reference(arn: str) -> tuple[str, str]:
    """(service, id) for an environmentsecrets value: ("ssm", parameter name) or ("secretsmanager", ARN)."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "ssm" and parts[5].startswith("parameter"):
        name = parts[5][len("parameter"):]
        return "ssm", name if name.startswith("/") else name.lstrip("/")
    if len(parts) >= 6 and parts[2] == "secretsmanager":
        return "secretsmanager", arn
    raise ValueError(f"not a Parameter Store or Secrets Manager ARN: {arn}")


# --- the executor --------------------------------------------------------------------------------------------

class Engine:
    """Runs one deployment on this host, logging as the platform engine does."""

    def __init__(self, manifest: Manifest, command: str):
        self.manifest, self.command = manifest, command
        self.session: Any = None
        self.proxy_pending = False  # new proxy files written, nginx not yet reloaded with them
        for directory in (DEPLOYMENT, ENGINE_LOG.parent, CONTAINER_LOGS, APP_CURRENT.parent):
            directory.mkdir(parents=True, exist_ok=True)

    # logging
    def log(self, level: str, text: str, path: Path = ENGINE_LOG) -> None:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime())
        with open(path, "a") as out:
            out.write(f"{stamp} [{level}] {text}\n")

    def instruction(self, name: str) -> str:
        self.log("INFO", f"Executing instruction: {name}")
        return name

    # AWS, with the instance role's credentials
    def credentials(self) -> dict[str, str]:
        step = self.instruction("Get instance role credentials")
        try:
            token = _http("PUT", f"{IMDS}/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "300"})
            headers = {"X-aws-ec2-metadata-token": token}
            role = _http("GET", f"{IMDS}/latest/meta-data/iam/security-credentials/", headers).strip()
            return json.loads(_http("GET", f"{IMDS}/latest/meta-data/iam/security-credentials/{role}", headers))
        except OSError as exc:
            raise DeploymentError(step, f"no instance role credentials from the instance metadata service: {exc}")

    def client(self, service: str) -> Any:
        if self.session is None:
            import boto3

            given = self.credentials()
            self.session = boto3.Session(aws_access_key_id=given["AccessKeyId"],
                                         aws_secret_access_key=given["SecretAccessKey"],
                                         aws_session_token=given["Token"], region_name=self.manifest.region)
        return self.session.client(service, endpoint_url=self.manifest.endpoint_url)

    # steps
    def stage_application(self) -> Path:
        step = self.instruction("StageApplication")
        bundle = DEPLOYMENT / "app_source_bundle"
        try:
            self.client("s3").download_file(self.manifest.bucket, self.manifest.key, str(bundle))
        except Exception as exc:  # botocore's ClientError and friends
            raise DeploymentError(step, f"failed to download the source bundle s3://{self.manifest.bucket}/"
                                        f"{self.manifest.key}: {exc}")
        shutil.rmtree(APP_STAGING, ignore_errors=True)
        APP_STAGING.mkdir(parents=True)
        try:
            with zipfile.ZipFile(bundle) as archive:
                for info in archive.infolist():
                    target = Path(archive.extract(info, APP_STAGING))
                    mode = (info.external_attr >> 16) & 0o7777
                    if mode and not info.is_dir():
                        target.chmod(mode)
        except zipfile.BadZipFile as exc:
            raise DeploymentError(step, f"the source bundle is not a zip file: {exc}")
        self.log("INFO", f"App source bundle extracted to {APP_STAGING}")
        return APP_STAGING

    def run_hooks(self, app: Path, phase: str, cwd: Path, environment: dict[str, str]) -> None:
        kind = "confighooks" if self.command == "configure" else "hooks"
        step = self.instruction(f"Run{'Config' if kind == 'confighooks' else 'AppDeploy'}{_PHASE_NAMES[phase]}Hooks")
        directory = app / ".platform" / kind / phase
        if not directory.is_dir():
            self.log("INFO", f"The dir .platform/{kind}/{phase}/ does not exist in the application. "
                             "Skipping this step...")
            return
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
               **environment}
        for name in ordered_hooks(p.name for p in directory.iterdir() if p.is_file()):
            relative = f".platform/{kind}/{phase}/{name}"
            self.log("INFO", f"Running platform hook: {relative}")
            self.log("INFO", f"Running command {relative}", HOOKS_LOG)
            if not os.access(directory / name, os.X_OK):
                raise DeploymentError(step, hook_failure(relative, f"fork/exec {relative}: permission denied"))
            done = subprocess.run([str(directory / name)], cwd=cwd, env=env, capture_output=True, text=True)
            with open(HOOKS_LOG, "a") as out:
                out.write(done.stdout + done.stderr)
            if done.returncode != 0:
                raise DeploymentError(step, hook_failure(relative, f"exit status {done.returncode}. "
                                                                   f"Stderr:{done.stderr.strip()}"))

    def install_proxy_files(self, app: Path) -> None:
        step = self.instruction("configure proxy server")
        backup = DEPLOYMENT / "nginx-previous"
        shutil.rmtree(backup, ignore_errors=True)
        shutil.copytree(NGINX, backup, symlinks=True)
        installed_record = DEPLOYMENT / "nginx-bundle-files.json"
        for old in json.loads(installed_record.read_text()) if installed_record.exists() else []:
            (NGINX / old).unlink(missing_ok=True)
        upstream = DEPLOYMENT / "upstream.json"
        current = json.loads(upstream.read_text()) if upstream.exists() else {}
        for relative, text in platform_nginx_files(current.get("address"), current.get("port")).items():
            _write(NGINX / relative, text)
        bundle = bundle_nginx_files(app)
        for relative, source in bundle.items():
            (NGINX / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, NGINX / relative)
        installed_record.write_text(json.dumps(sorted(bundle)))
        self.proxy_pending = True
        check = subprocess.run(["nginx", "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            self.restore_proxy_files()
            raise DeploymentError(step, f"nginx -t failed: {check.stderr.strip()}")

    def restore_proxy_files(self) -> None:
        """Back to the files nginx runs with (before this deployment's); /etc/nginx itself may be a mount point."""
        backup = DEPLOYMENT / "nginx-previous"
        if self.proxy_pending and backup.is_dir():
            for child in NGINX.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            shutil.copytree(backup, NGINX, symlinks=True, dirs_exist_ok=True)
        self.proxy_pending = False

    def pull_image(self, spec: Dockerrun) -> None:
        step = self.instruction("Docker Specific Build Application")
        if not spec.update and _docker("image", "inspect", spec.image).returncode == 0:
            self.log("INFO", f"Image {spec.image} is on the instance and Update is false: not pulling")
            return
        try:
            auth = self.client("ecr").get_authorization_token()["authorizationData"][0]
        except Exception as exc:
            raise DeploymentError(step, f"ecr:GetAuthorizationToken failed: {exc}")
        registry = auth["proxyEndpoint"].split("://", 1)[-1].rstrip("/")
        if spec.image.split("/", 1)[0] == registry:
            user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
            login = _docker("login", "--username", user, "--password-stdin", registry, input=password)
            if login.returncode != 0:
                raise DeploymentError(step, f"docker login {registry} failed: {login.stderr.strip()}")
        pulled = _docker("pull", spec.image)
        if pulled.returncode != 0:
            raise DeploymentError(step, f"Failed to pull Docker image {spec.image}: {pulled.stderr.strip()}")
        self.log("INFO", f"Pulled {spec.image}")

    def environment(self) -> dict[str, str]:
        step = self.instruction("Fetch environment secrets")
        resolved = {}
        for name, arn in sorted(self.manifest.secrets.items()):
            try:
                service, ident = secret_reference(arn)
                if service == "ssm":
                    value = self.client("ssm").get_parameter(Name=ident, WithDecryption=True)["Parameter"]["Value"]
                else:
                    value = self.client("secretsmanager").get_secret_value(SecretId=ident)["SecretString"]
            except Exception as exc:
                raise DeploymentError(step, f"failed to fetch the environment secret {name} from {arn}: {exc}")
            resolved[name] = value
        return container_environment(self.manifest.properties, resolved)

    def replace_container(self, spec: Dockerrun, environment: dict[str, str]) -> str:
        step = self.instruction("start docker container")
        previous = (DEPLOYMENT / "container-id").read_text().strip() if (DEPLOYMENT / "container-id").exists() else ""
        publishes = any(host for _, host in spec.ports)
        if previous and publishes:  # a published host port can only be held by one container
            _docker("rm", "-f", previous)
        argv = docker_run_argv(spec, sorted(environment), _hosts_entries(),
                               {"elasticbeanstalk.version-label": self.manifest.version_label})
        started = subprocess.run(argv, env={**os.environ, **environment}, capture_output=True, text=True)
        if started.returncode != 0:
            raise DeploymentError(step, f"Failed to run the Docker container: {started.stderr.strip()}")
        new = started.stdout.strip()
        state = _docker("inspect", "-f", "{{.State.Running}} {{.NetworkSettings.IPAddress}}", new).stdout.split()
        if not state or state[0] != "true":
            logs = _docker("logs", "--tail", "20", new)
            _docker("rm", "-f", new)
            raise DeploymentError(step, f"the Docker container exited at start: {logs.stdout}{logs.stderr}".strip())
        address, port = state[1], spec.ports[0][0]
        if not _wait_for_port(address, port, new):
            self.log("WARN", f"the container does not accept connections on {address}:{port} yet; proxying to it")
        self.instruction("startProxy")
        _write(NGINX / UPSTREAM_FILE, upstream_conf(address, port))
        before = _nginx_workers()
        reloaded = subprocess.run(["bash", "-c", "nginx -t && nginx -s reload"], capture_output=True, text=True)
        if reloaded.returncode != 0:
            _docker("rm", "-f", new)
            self.restore_proxy_files()
            raise DeploymentError(step, f"nginx did not take the new upstream: {reloaded.stderr.strip()}")
        _wait_for_new_workers(before)
        self.proxy_pending = False
        (DEPLOYMENT / "upstream.json").write_text(json.dumps({"address": address, "port": port}))
        (DEPLOYMENT / "container-id").write_text(new + "\n")
        if previous and not publishes:
            _docker("rm", "-f", previous)
        return new

    def flip(self) -> None:
        self.instruction("FlipApplication")
        shutil.rmtree(APP_CURRENT, ignore_errors=True)
        APP_STAGING.rename(APP_CURRENT)
        (DEPLOYMENT / "manifest.json").write_text(self.manifest.to_json())

    # the two commands
    def deploy(self) -> str:
        staging = self.stage_application()
        environment = self.manifest.properties
        self.run_hooks(staging, "prebuild", staging, environment)
        self.install_proxy_files(staging)
        spec = _dockerrun(staging)
        self.pull_image(spec)
        self.run_hooks(staging, "predeploy", staging, environment)
        container = self.replace_container(spec, self.environment())
        self.flip()
        self.run_hooks(APP_CURRENT, "postdeploy", APP_CURRENT, environment)
        return container

    def configure(self) -> str:
        step = self.instruction("configure application")
        if not APP_CURRENT.is_dir():
            raise DeploymentError(step, "no application is deployed on this instance")
        environment = self.manifest.properties
        self.run_hooks(APP_CURRENT, "prebuild", APP_CURRENT, environment)
        self.install_proxy_files(APP_CURRENT)
        spec = _dockerrun(APP_CURRENT)
        self.run_hooks(APP_CURRENT, "predeploy", APP_CURRENT, environment)
        container = self.replace_container(spec, self.environment())
        (DEPLOYMENT / "manifest.json").write_text(self.manifest.to_json())
        self.run_hooks(APP_CURRENT, "postdeploy", APP_CURRENT, environment)
        return container


def _dockerrun(app: Path) -> Dockerrun:
    path = app / "Dockerrun.aws.json"
    if not path.is_file():
        raise DeploymentError("Docker Specific Build Application", "Dockerrun.aws.json is missing from the bundle")
    return Dockerrun.parse(path.read_text())


def _hosts_entries() -> dict[str, str]:
    """This host's /etc/hosts names beyond localhost and its own name (the VPC resolver's stand-in): containers
    get them too."""
    return hosts_entries(Path("/etc/hosts").read_text(), socket.gethostname())


def hosts_entries(etc_hosts: str, own_name: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in etc_hosts.splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            if not fields[0].startswith(("127.", "::1")) and name != own_name and name not in entries:
                entries[name] = fields[0]
    return entries


def _wait_for_port(address: str, port: int, container: str, timeout: float = 30.0) -> bool:
    """Whether the new container accepts connections on its first port before nginx is pointed at it (so
    the old one keeps the traffic until then), within timeout, while it keeps running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return True
        except OSError:
            if _docker("inspect", "-f", "{{.State.Running}}", container).stdout.strip() != "true":
                return False
            time.sleep(0.2)
    return False


def _nginx_workers() -> set[str]:
    found = subprocess.run(["pgrep", "-f", "^nginx: worker process$"], capture_output=True, text=True)
    return set(found.stdout.split())


def _wait_for_new_workers(before: set[str], timeout: float = 10.0) -> None:
    """`nginx -s reload` returns before the master has started workers with the new upstream; until then the old
    ones take new connections (a 502 right after a deploy). Wait until none of them is still accepting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = _nginx_workers()
        if now and not now & before:
            return
        time.sleep(0.05)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _docker(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, input=input)


def _http(method: str, url: str, headers: dict[str, str]) -> str:
    request = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("deploy", "configure"):
        print("usage: python -m sandbox.platform_agent deploy|configure MANIFEST", file=sys.stderr)
        return 2
    command, manifest = argv[0], Manifest.from_json(Path(argv[1]).read_text())
    engine = Engine(manifest, command)
    name = "app-deploy" if command == "deploy" else "config-deploy"
    engine.log("INFO", f"Starting executing the config set Infra-EmbeddedPostBuild. Command: {name}")
    try:
        container = engine.deploy() if command == "deploy" else engine.configure()
    except DeploymentError as error:
        engine.restore_proxy_files()  # nginx keeps serving the running container as it was
        engine.log("ERROR", f"An error occurred during execution of command [{name}] - [{error.step}]. "
                            f"Stop running the command. Error: {error.message}")
        print(Result(False, command, manifest.version_label, step=error.step, error=error.message,
                     events=failure_events(error)).to_json())
        return 1
    engine.log("INFO", f"Command {name} succeeded")
    print(Result(True, command, manifest.version_label, container_id=container).to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
