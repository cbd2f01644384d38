"""One sandbox instance host (sandbox/instance_host.py) with what stands around it on EB: the emulated AWS on the
bridge (S3 bucket, instance role, an SSM SecureString), the registry behind ECR with a small test image, and an
EC2 key pair.

Names: the tests' SIFU_TESTBED_PREFIX with an `i` appended (sifurmi-*), and the /24 whose third octet is
SIFU_TESTBED_SUBNET's plus 100 (10.231.100.0/24 by default), so this bed and the SSH test bed never share a name
or an address.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox import metadata
from sandbox.instance_host import InstanceHost
from sandbox.network import Bridge
from sandbox.platform_agent import Manifest
from sandbox.server import MotoServer
from tests.support.netns import PREFIX, SUBNET

PREFIX_HERE = f"{PREFIX}i"
_a, _b, _c = SUBNET.split(".")
SUBNET_HERE = f"{_a}.{_b}.{int(_c) + 100}"
REGION = "us-east-1"
BUCKET = "elasticbeanstalk-us-east-1-123456789012"
ROLE = "aws-elasticbeanstalk-ec2-role"
SECRET_NAME = "/sifu/sandbox-test/db-password"
SECRET_VALUE = "s3cr3t-from-ssm"
EFS_NAME = "fs-0123456789abcdef0.efs.us-east-1.amazonaws.com"
EFS_ADDRESS = f"{SUBNET_HERE}.2"
APP_PORT = 8000
# A tiny app on the local base: answers GET with its environment's two variables as JSON.
APP = (
    "import http.server, json, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = json.dumps({k: os.environ.get(k) for k in ('GREETING', 'DB_PASSWORD')}).encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    f"http.server.HTTPServer(('', {APP_PORT}), H).serve_forever()\n"
)


@dataclass
class Rehearsal:
    host: InstanceHost
    moto: MotoServer
    image: str
    client_key: Path
    secret_arn: str

    def manifest(self, key: str, label: str, **properties: str) -> Manifest:
        return Manifest(endpoint_url=self.moto.endpoint, region=REGION, bucket=BUCKET, key=key, version_label=label,
                        properties=properties, secrets={"DB_PASSWORD": self.secret_arn})

    def upload(self, key: str, files: dict[str, tuple[str, int]]) -> None:
        """A source bundle (path -> (text, mode)) into the EB bucket, as the deploy uploads it."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path, (text, mode) in sorted(files.items()):
                info = zipfile.ZipInfo(path)
                info.external_attr = (0o100000 | mode) << 16
                archive.writestr(info, text)
        self.moto.client("s3").put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())


def _tiny_image(docker_client, localbase_image: str, registry) -> str:
    tag = f"{registry.host}/sandbox-instance-test:1"
    dockerfile = (f"FROM {localbase_image}\nLABEL sifu.test=instance-host\n"
                  f"CMD {json.dumps(['python3', '-c', APP])}\n")
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    auth = {"username": registry.username, "password": registry.password}
    for item in docker_client.images.push(tag, auth_config=auth, stream=True, decode=True):
        assert "error" not in item, item  # the SDK reports a failed push in the stream only
    return tag


@pytest.fixture(scope="module")
def rehearsal(docker_client, localbase_image, registry):
    if os.geteuid() != 0:
        pytest.skip("instance hosts need root (network, mount and PID namespaces)")
    for tool in ("/usr/sbin/sshd", "/usr/sbin/nginx", "/usr/sbin/dockerd", "/usr/bin/sudo", "/usr/bin/nsenter"):
        if not Path(tool).exists():
            pytest.skip(f"{tool} is not installed (see tests/system-packages.txt)")
    image = _tiny_image(docker_client, localbase_image, registry)
    work = Path(tempfile.mkdtemp(prefix=f"{PREFIX_HERE}-", dir="/tmp"))
    bridge = Bridge(PREFIX_HERE, SUBNET_HERE).up()
    moto = host = None
    try:
        moto = MotoServer(host=bridge.address, log_path=work / "moto.log").start()
        moto.use_registry(registry)
        moto.client("s3").create_bucket(Bucket=BUCKET)
        role_arn = moto.client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        moto.client("ssm").put_parameter(Name=SECRET_NAME, Value=SECRET_VALUE, Type="SecureString")
        secret_arn = f"arn:aws:ssm:{REGION}:123456789012:parameter{SECRET_NAME}"
        key = work / "client_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        public = (work / "client_ed25519.pub").read_text()
        moto.client("ec2").import_key_pair(KeyName="sandbox", PublicKeyMaterial=public.encode())
        instance_id = "i-0123456789abcdef0"
        host = InstanceHost(
            bridge, f"{PREFIX_HERE}-h1", f"{SUBNET_HERE}.11", instance_id, work / "h1", public, region=REGION,
            role_name=ROLE, credentials=metadata.assume_role_credentials(moto.endpoint, role_arn, REGION, instance_id),
            hosts_entries={EFS_NAME: EFS_ADDRESS}, loopback_ports=[int(registry.host.rsplit(":", 1)[1])]).start()
        yield Rehearsal(host=host, moto=moto, image=image, client_key=key, secret_arn=secret_arn)
    finally:
        if host:
            host.stop()
        if moto:
            moto.stop()
        bridge.down()
        shutil.rmtree(work, ignore_errors=True)
