"""What a whole `inv deploy` needs besides the emulated AWS: instances to converge and a service to smoke-check.

- the instances are the first host of the session's ``remote_bed`` (tests/support/hosts.py: sshd, nginx,
  ganesha as EFS, an app stand-in), reset to fresh. (To run these tests while another bed is up on this
  machine, give this run its own names: SIFU_TESTBED_PREFIX=sifudp SIFU_TESTBED_SUBNET=10.232.0.)
- ``deploy_site``: prepares a fresh emulated account for a deploy that reaches
  them, and returns the environment variables (config) for the deploy. Stand-ins, said plainly:
  * ECR's registry is the session's password-protected registry (``registry``): bound to the emulated ECR, its
    GetAuthorizationToken and repository URIs name it, as AWS's name ECR's own endpoint (sandbox/ecr.py);
  * the emulated Elastic Beanstalk gives the instances it launches the test hosts' addresses as public IPs
    (control endpoint ``instance_addresses``), so converge's SSH reaches real sshd hosts;
  * the platform's own deployment steps (prebuild hooks, installing .platform/nginx/conf.d): the bed does them
    on the hosts before the deploy (``TestBed.deploy_bundle``), since the emulated EB has no instances to run them;
  * EFS: the test creates the file system first, with the CreationToken the deployer uses (the deployer
    adopts it and adds the mount targets and security groups), only so that the host's /etc/hosts can map
    that file system's DNS name to ganesha before the deploy runs;
  * the load balancer: smoke.sifu_url / smoke.jupyter_url point the smoke check at a real local Sifu and
    Jupyter (tests/support/sifu_stack.py) instead of the environment's CNAME, which does not resolve here.
"""

from __future__ import annotations

import pytest

from tests.support.hosts import DEPLOY_HOST

KEY_PAIR = "sifu-ops"
CREATION_TOKEN = "sifu-notebooks-sifu-notebooks-env-notebooks"  # EfsStorage: {project}-{environment}-notebooks


def prepare_site(aws, bed, hosts, stack, registry, tmp_path) -> dict[str, str]:
    """Key pair, address pool, ECR's registry, EFS name -> ganesha; returns the deploy's environment (config)."""
    from deployer.remote.commands import efs_dns_name
    from tests.support.hosts import EFS_ADDRESS
    from tests.support.sifu_stack import SERVICE_TOKEN

    aws.client("ec2").create_key_pair(KeyName=KEY_PAIR)
    aws.give_instances_addresses([host.address for host in hosts])
    aws.use_registry(registry)
    fs_id = aws.client("efs").create_file_system(
        CreationToken=CREATION_TOKEN, Encrypted=True, PerformanceMode="generalPurpose",
        Tags=[{"Key": "project", "Value": "sifu-notebooks"}])["FileSystemId"]
    for host in hosts:
        with open(host.root / "etc-hosts", "a") as hosts_file:
            hosts_file.write(f"{EFS_ADDRESS} {efs_dns_name(fs_id, 'us-east-1')}\n")
    # The local Sifu runs with the test service token: as after an earlier deploy, SSM already holds it (the
    # deploy keeps it), and the smoke check reads it from there to write a notebook through Sifu.
    aws.client("ssm").put_parameter(Name="/sifu-notebooks/sifu-notebooks-env/SIFU_SERVICE_TOKEN", Value=SERVICE_TOKEN,
                                     Type="SecureString")
    overrides = tmp_path / "overrides.yml"
    overrides.write_text("eb:\n  poll_interval: 0.2\n")
    environ = {
        "OVERRIDES": str(overrides),
        "DEPLOY__EB__KEY_NAME": KEY_PAIR,
        "EDX_OAUTH2_CLIENT_SECRET": "oauth-secret",
        "DEPLOY__SSH__USER": "root",
        "DEPLOY__SSH__KEY_FILE": str(bed.client_key),
        "DEPLOY__SSH__CONNECT_TIMEOUT": "5",
        "DEPLOY__EFS__MOUNT_POINT": bed.mount_point,
        "DEPLOY__REMOTE__CONTAINER_WAIT": "5",
        "DEPLOY__SMOKE__SIFU_URL": stack.sifu.url,
        "DEPLOY__SMOKE__JUPYTER_URL": stack.jupyter.url,
        "DEPLOY__SMOKE__TIMEOUT": "5",
    }
    bed.deploy_bundle(*hosts, environ=environ)
    return environ


@pytest.fixture
def deploy_site(aws, remote_bed, sifu_stack, registry, tmp_path):
    """A fresh emulated account whose environment's one instance is the bed's first host (reset), and a
    real Sifu and Jupyter for the smoke check, ECR backed by the session's registry; returns the deploy's config environment."""
    host = remote_bed.hosts[DEPLOY_HOST]
    host.reset()
    return prepare_site(aws, remote_bed, [host], sifu_stack, registry, tmp_path)
