"""The seed's 14-step deployment checklist: each step a small object with a read-only check() and an
idempotent apply(), run by deployer.steps.

Run order follows the seed numbers except where an input must exist first: the deployment token (10, 11)
before the build (6); storage (14a) before rendering (13), because the bundle names the file system.
"""

from __future__ import annotations

from deployer.checklist import beanstalk, bundle, image, instances, registry, storage
from deployer.steps import Step


def deploy_steps(network: str | None = None) -> list[Step]:
    """Every step of `inv deploy`, in run order (``network``: for the image build's RUN steps)."""
    return [
        registry.Credentials(),             # 1  tools and credentials
        registry.RegistryStatus(),          # 2  registry status
        registry.RegistryAccess(),          # 3  registry and instance role access
        registry.RegistryLogin(),           # 4  registry login details
        image.DockerLogin(),                # 5  docker login
        image.DeploymentToken(),            # 10 deployment token
        image.AskToken(),                   # 11 ask for the token when needed
        image.BuildImage(network=network),  # 6  build the image if out of date
        image.PushImage(),                  # 7  push the image
        beanstalk.EbApplication(),          # 8  Elastic Beanstalk application
        beanstalk.EbEnvironment(),          # 9  Elastic Beanstalk environment
        beanstalk.EbCliConfig(),            # 9  EB CLI configuration
        bundle.Ports(),                     # 12 ports
        storage.EfsStorage(),               # 14a EFS file system
        storage.ManagedDatabase(),          # 14a managed database
        storage.Secrets(),                  # 14a secrets in SSM
        beanstalk.LoadBalancerGroup(),      # 14a the load balancer's security group
        bundle.RenderBundle(),              # 13 render the bundle
        beanstalk.ApplicationVersion(),     # 14b application version
        beanstalk.DeployEnvironment(),      # 14c create or update the environment
        beanstalk.WaitReady(),              # 14d wait for Ready, then Green
        registry.KeepImages(),              # 14g keep the live and rollback images from expiring
        instances.ConvergeInstances(),      # 14e converge the instances
        instances.SmokeCheck(),             # 14f smoke check
    ]
