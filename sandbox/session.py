"""A whole sandbox for an operator (`inv sandbox`): the emulated AWS with a registry behind its ECR, a key pair,
and the environment variables that point `inv plan` / `inv deploy` at them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import devnull
from pathlib import Path

from sandbox.registry import Registry, running_registry
from sandbox.server import MotoServer

KEY_PAIR = "sandbox"


@dataclass
class Sandbox:
    server: MotoServer
    registry: Registry
    env: dict[str, str]  # what to export in the operator's shell


@contextmanager
def running_sandbox(region: str, port: int | None = None, log_path: Path | None = None) -> Iterator[Sandbox]:
    """Emulated AWS on ``port`` (default: a free one) for ``region``, ECR backed by a local registry, and the
    EC2 key pair ``sandbox``, until the block ends; then both processes are stopped and their data removed."""
    with MotoServer(port=port, log_path=log_path) as server, running_registry("sifu-sandbox-registry-") as registry:
        server.use_registry(registry, region=region)
        server.client("ec2", region).create_key_pair(KeyName=KEY_PAIR)
        env = {**server.env(region), "AWS_CONFIG_FILE": devnull, "AWS_SHARED_CREDENTIALS_FILE": devnull,
               "DEPLOY__EB__KEY_NAME": KEY_PAIR, "DEPLOY__EB__REGION": region,
               "DEPLOY__EFS__REGION": region, "DEPLOY__ECR__REGION": region}
        yield Sandbox(server=server, registry=registry, env=env)
