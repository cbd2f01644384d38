"""Pushing to a real registry behind a password: login, progress, skip when present, refusals surface."""

from __future__ import annotations

import pytest

from deployer import image
from deployer.docker_client import Docker, LoginFailed
from tests.integration.image.helpers import run_inv

pytestmark = pytest.mark.integration


def test_push_with_login_then_second_push_is_skipped(app_image, docker_engine, registry):
    repository = app_image.settings.ecr.repository
    environ = {**app_image.environ, "REGISTRY_PASSWORD": registry.password}
    first = run_inv("push-image", "--registry", registry.host, "--username", registry.username, "--network", "host",
                    engine=docker_engine, environ=environ)
    assert first.returncode == 0, first.stdout + first.stderr
    tag = app_image.plan.final.tag
    assert f"pushed {registry.host}/{repository}:{tag} (sha256:" in first.stdout
    assert "layer " in first.stdout  # plain progress lines without a terminal
    assert registry.password not in first.stdout + first.stderr
    assert tag in registry.tags(repository)

    second = run_inv("push-image", "--registry", registry.host, "--username", registry.username, "--network", "host",
                     engine=docker_engine, environ=environ)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"registry already has {registry.host}/{repository}:{tag}; nothing to build or push" in second.stdout
    assert "layer " not in second.stdout


def test_push_without_login_fails_with_the_registrys_message(app_image, docker_engine, registry):
    environ = {**app_image.environ, "DEPLOY__ECR__REPOSITORY": "anonymous-push"}
    result = run_inv("push-image", "--registry", registry.host, "--network", "host", engine=docker_engine, environ=environ)
    assert result.returncode != 0
    assert "push of" in result.stderr and "failed" in result.stderr
    assert "no basic auth credentials" in result.stderr or "unauthorized" in result.stderr.lower()
    assert registry.tags("anonymous-push") == []


def test_wrong_password_fails_login_with_a_clear_message(app_image, docker_engine, registry):
    docker = Docker(docker_engine.base_url)
    with pytest.raises(LoginFailed) as failure:
        image.push(docker, app_image.ref, registry.host, registry.username, "not-the-password",
                   repository="wrong-password")
    docker.close()
    assert f"login to {registry.host} as {registry.username} failed" in str(failure.value)
    assert "not-the-password" not in str(failure.value)
    assert registry.tags("wrong-password") == []


def test_push_library_call_reports_progress_and_digest(app_image, docker_engine, registry):
    """The seam the deploy steps use (ECR credentials plug in as username/password)."""
    docker = Docker(docker_engine.base_url)
    seen = []
    result = image.push(docker, app_image.ref, f"{registry.host}/team", registry.username, registry.password,
                        progress_cb=seen.append, repository="library-push")
    again = image.push(docker, app_image.ref, f"{registry.host}/team", registry.username, registry.password,
                       repository="library-push")
    docker.close()
    assert not result.skipped and result.digest.startswith("sha256:")
    # Layers this registry already holds (from the other tests' pushes) are mounted, not uploaded.
    finished = {item["id"]: item["status"] for item in seen if item.get("id") and item.get("status")}
    assert finished and all(s == "Pushed" or s.startswith("Mounted from") or s == "Layer already exists"
                            for layer, s in finished.items() if layer != app_image.plan.final.tag)
    assert again.skipped and again.target == result.target
    assert app_image.plan.final.tag in registry.tags("team/library-push")
