"""Checklist steps 5, 10, 11, 6, 7 against the real engine and registry.

The AWS steps (2-4) would put ECR's login and repository URI in the facts; here the facts name
the local registry, which is what those steps' values stand for.
"""

from __future__ import annotations

import secrets

import pytest

from deployer import steps
from deployer.aws.ecr import RegistryLogin
from deployer.checklist import image
from deployer.checklist.context import Context
from deployer.config import load
from deployer.docker_client import Docker

pytestmark = pytest.mark.integration


def image_steps():
    return [image.DockerLogin(), image.DeploymentToken(), image.AskToken(), image.BuildImage(network="host"),
            image.PushImage()]


def context(app_image, registry, docker_engine, repository: str, password: str | None = None, dry_run=False):
    loaded = load(environ=app_image.environ)
    ctx = Context(loaded=loaded, dry_run=dry_run, emit=lambda line: None)
    ctx.facts.registry_login = RegistryLogin(username=registry.username, password=password or registry.password,
                                                registry=registry.host, expires_at=None)
    ctx.facts.repository_uri = f"{registry.host}/{repository}"
    ctx.docker = Docker(docker_engine.base_url)
    return ctx


def by_number(report):
    return {step.number: step for step in report.steps}


def test_plan_then_deploy_then_nothing_to_do(app_image, registry, docker_engine):
    plan = steps.run(image_steps(), context(app_image, registry, docker_engine, "checklist", dry_run=True), quiet=True)
    found = by_number(plan)
    assert found[5].status == "ok" and found[10].status == "ok" and found[11].status == "ok"
    assert found[6].status == "ok"  # built this session already
    assert found[7].status == "planned"
    assert plan.counters.bytes_pushed == 0 and registry.tags("checklist") == []

    ctx = context(app_image, registry, docker_engine, "checklist")
    first = steps.run(image_steps(), ctx, quiet=True)
    assert first.failed is None, first.failed
    assert by_number(first)[7].status == "changed"
    assert ctx.facts.image_uri == f"{registry.host}/checklist:{app_image.plan.final.tag}"
    assert app_image.plan.final.tag in registry.tags("checklist")
    assert first.counters.bytes_pushed > 0

    again = steps.run(image_steps(), context(app_image, registry, docker_engine, "checklist"), quiet=True)
    assert all(step.status == "ok" for step in again.steps), again.steps
    assert "registry has" in by_number(again)[6].summary  # no build: the registry has the tag
    assert again.counters.bytes_pushed == 0


def test_refused_login_fails_step_5_with_the_reason(app_image, registry, docker_engine):
    wrong = f"pw-{secrets.token_hex(8)}"
    report = steps.run(image_steps(), context(app_image, registry, docker_engine, "refused", password=wrong), quiet=True)
    assert report.failed is not None and report.failed.number == 5
    assert f"login to {registry.host} as {registry.username} failed" in report.failed.error
    assert wrong not in report.failed.error
    assert registry.tags("refused") == []
