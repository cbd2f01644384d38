"""A whole sandbox for an operator (`inv sandbox`): the emulated AWS with a registry behind its ECR, a key pair,
and the environment variables that point `inv plan` / `inv deploy` at them.

With ``instances`` (``inv sandbox --instances N``, as root) it is a whole deployment on this machine: a bridge
for the instance hosts the emulated Elastic Beanstalk launches (sandbox/fleet.py), a Docker engine of its own
with the local Debian base (no registry is reachable), the development LMS for students to sign in at, and a
client command (``build/sandbox/client CMD``) that runs CMD where the environment's CNAME resolves to the load
balancer, as DNS would make it on AWS.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from os import devnull
from pathlib import Path
from typing import Any

from sandbox import processes
from sandbox.registry import Registry, running_registry
from sandbox.server import MotoServer

KEY_PAIR = "sandbox"
PREFIX = os.environ.get("SIFU_SANDBOX_PREFIX", "sifusb")
SUBNET = os.environ.get("SIFU_SANDBOX_SUBNET", "10.239.0")
DEVLMS_CLIENT_ID = "sifu-sandbox"

CLIENT_SCRIPT = """#!/bin/bash
# Run a command as a client of the sandbox: in a private mount namespace where /etc/hosts is the sandbox's
# (the environment's CNAME -> its load balancer, as DNS resolves it on AWS). This machine's /etc/hosts is untouched.
set -euo pipefail
[ $# -gt 0 ] || set -- "${{SHELL:-/bin/bash}}"
exec unshare --mount --propagation private bash -c 'mount --bind "$0" /etc/hosts && exec "$@"' {hosts} "$@"
"""


@dataclass
class Sandbox:
    server: MotoServer
    registry: Registry
    env: dict[str, str]  # what to export in the operator's shell
    started: list[str] = field(default_factory=list)  # what it runs, one line each, for the operator
    client: Path | None = None  # the client command (with instances)
    workdir: Path | None = None  # the hosts' and stand-ins' files (with instances)
    ca_file: Path | None = None  # the sandbox's CA, which the load balancer's certificate comes from
    lms_url: str = ""  # the development LMS students sign in at (with instances)
    secrets_file: Path | None = None  # the site's throwaway secrets (client secret, RDS password), mode 0600


@contextmanager
def running_sandbox(region: str, port: int | None = None, log_path: Path | None = None, instances: int = 0,
                    workdir: Path | None = None, prefix: str = PREFIX, subnet: str = SUBNET,
                    engine: Any = None, sifu_port: int = 3334) -> Iterator[Sandbox]:
    """Emulated AWS on ``port`` (default: a free one) for ``region``, ECR backed by a local registry, and the
    EC2 key pair ``sandbox``, until the block ends; then every process is stopped and its data removed.
    ``instances`` > 0 also runs the fleet and what it needs (see the module's docstring) in ``workdir``, building
    with ``engine`` (a running sandbox.docker_engine.DockerEngine) or a Docker engine of its own."""
    with ExitStack() as stack:
        server = stack.enter_context(MotoServer(port=port, log_path=log_path))
        registry = stack.enter_context(running_registry("sifu-sandbox-registry-"))
        server.use_registry(registry, region=region)
        key = server.client("ec2", region).create_key_pair(KeyName=KEY_PAIR)
        env = {**server.env(region), "AWS_CONFIG_FILE": devnull, "AWS_SHARED_CREDENTIALS_FILE": devnull,
               "DEPLOY__EB__KEY_NAME": KEY_PAIR, "DEPLOY__EB__REGION": region,
               "DEPLOY__EFS__REGION": region, "DEPLOY__ECR__REGION": region}
        box = Sandbox(server=server, registry=registry, env=env,
                      started=[f"emulated AWS on {server.endpoint}", f"registry behind ECR on {registry.host}"])
        if instances:
            if workdir is None:
                workdir = Path(tempfile.mkdtemp(prefix="sifu-sandbox-"))
                stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            _run_fleet(stack, box, region, instances, key["KeyMaterial"], workdir, prefix, subnet, engine, sifu_port)
        yield box


def _run_fleet(stack: ExitStack, box: Sandbox, region: str, instances: int, private_key: str, workdir: Path,
               prefix: str, subnet: str, engine: Any, sifu_port: int) -> None:
    from sandbox import base_image
    from sandbox.docker_engine import start_engine, stop_engine
    from sandbox.network import Bridge

    if os.geteuid() != 0:
        raise PermissionError("inv sandbox --instances needs root: it makes network namespaces, a bridge and "
                              "a Docker engine for the instance hosts")
    workdir.mkdir(parents=True, exist_ok=True)
    box.workdir = workdir
    key_file = workdir / "sandbox-key.pem"
    key_file.write_text(private_key)
    key_file.chmod(0o600)
    public_key = subprocess.run(["ssh-keygen", "-y", "-f", str(key_file)], check=True, capture_output=True,
                                text=True).stdout.strip()

    bridge = Bridge(prefix, subnet).up()
    stack.callback(bridge.down)
    box.started.append(f"bridge {bridge.name} on {bridge.address}/24 (instances from {subnet}.20)")

    if engine is None:
        engine_root = Path(tempfile.mkdtemp(prefix=f"{prefix}-dk-", dir="/tmp"))
        engine = start_engine(engine_root)
        stack.callback(shutil.rmtree, engine_root, ignore_errors=True)
        stack.callback(stop_engine, engine)
    client = engine.client()
    base_image.import_base(client)
    client.close()
    box.started.append(f"Docker engine for builds on {engine.base_url} (base image {base_image.IMAGE}, built here)")

    hosts_file = workdir / "client-hosts"
    hosts_file.write_text("127.0.0.1\tlocalhost\n")
    client_command = workdir / "client"
    client_command.write_text(CLIENT_SCRIPT.format(hosts=shlex.quote(str(hosts_file))))
    client_command.chmod(0o755)
    box.client = client_command

    box.server.control(fleet={"prefix": prefix, "subnet": subnet, "workdir": str(workdir / "fleet"),
                              "public_key": public_key, "endpoint": box.server.endpoint,
                              "registry": box.registry.host, "client_hosts": str(hosts_file)})
    stack.callback(box.server.control, fleet=None)
    box.started.append(f"instance hosts for up to {instances} instance(s), a load balancer, EFS and RDS stand-ins "
                       f"(as the emulated Elastic Beanstalk asks for them)")

    cname = f"sifu-notebooks-sifu-notebooks-env.{region}.elasticbeanstalk.com"
    # HTTPS, as a real site runs: ACM's certificate (a record in moto) stands for the sandbox CA's, which the load
    # balancer serves for the CNAME; the clients trust that CA next to the machine's own.
    certificate = box.server.client("acm", region).request_certificate(DomainName=cname)["CertificateArn"]
    box.ca_file = workdir / "fleet" / "ca" / "sandbox-ca.pem"
    trust = str(workdir / "fleet" / "ca" / "trusted.pem")
    lms_port = processes.free_port(bridge.address)
    client_secret = os.urandom(18).hex()
    lms = stack.enter_context(_devlms(client_command, bridge.address, lms_port, f"https://{cname}:{sifu_port}",
                                      client_secret, workdir, trust))
    box.lms_url = f"http://{bridge.address}:{lms_port}"
    box.started.append(f"development LMS on {box.lms_url} (pid {lms.pid}), OAuth2 client '{DEVLMS_CLIENT_ID}', "
                       f"students alice, bob, student-1..25 (password NAME-pass)")

    box.env.update({
        "DOCKER_HOST": engine.base_url,
        "DOCKER_CONFIG": str(engine.root / "cli-config"),
        "DEPLOY__IMAGE__BASE_IMAGE": base_image.IMAGE,
        "DEPLOY__IMAGE__BUILD_NETWORK": "host",  # the engine has no bridge network (sandbox/docker_engine.py)
        "DEPLOY__SSH__KEY_FILE": str(key_file),
        "DEPLOY__EB__MIN_INSTANCES": str(instances),
        "DEPLOY__EB__MAX_INSTANCES": str(instances),
        "DEPLOY__RDS__MODE": "managed" if instances > 1 else "none",
        "DEPLOY__EDX__HOSTNAME": f"{bridge.address}:{lms_port}",
        "DEPLOY__EDX__OAUTH2_CLIENT_ID": DEVLMS_CLIENT_ID,
        "DEPLOY__EDX__FORCE_SSL": "false",  # the development LMS speaks plain http
        "DEPLOY__EB__CERTIFICATE_ARN": certificate,
        "DEPLOY__WEB__HTTPS": "true",
        **{name: trust for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")},
        "DEPLOY__EDX__OAUTH2_REDIRECT_URI": f"http://{bridge.address}:{lms_port}/xblock/callback",
    })
    # Secrets go to a file the operator sources, never to the terminal.
    box.secrets_file = workdir / "secrets.env"
    box.secrets_file.touch(mode=0o600)
    box.secrets_file.write_text(f"EDX_OAUTH2_CLIENT_SECRET={client_secret}\nDEPLOY__RDS__PASSWORD={os.urandom(12).hex()}\n")


@contextmanager
def _devlms(client: Path, address: str, port: int, sifu_url: str, secret: str, workdir: Path, trust: str):
    log = open(workdir / "devlms.log", "ab")
    env = {**os.environ, "EDX_OAUTH2_CLIENT_SECRET": secret, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "SSL_CERT_FILE": trust}
    process = subprocess.Popen(
        [str(client), sys.executable, "-m", "devlms", "--dev", "--host", address, "--port", str(port),
         "--sifu-url", sifu_url, "--client-id", DEVLMS_CLIENT_ID, "--students", "25"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        processes.wait_for_port(port, address, timeout=30, process=process)
        yield process
    finally:
        processes.stop(process)
        log.close()
