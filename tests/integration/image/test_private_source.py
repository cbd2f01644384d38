"""Sifu from a private repository: the token reaches the clone as a BuildKit secret and nowhere else.

The "private repository" is a git repository served by `git http-backend` behind Basic auth on
127.0.0.1 (tests/support/git_server.py): plain HTTP, since the build container cannot trust a test
CA; the config requires https for real repositories, so the URL is set on the validated settings.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import tarfile
import tempfile
from pathlib import Path

import pytest

from deployer import REPO_ROOT, image
from deployer.docker_client import BuildFailed, Docker
from tests.integration.image.helpers import run_inv
from tests.support.app_image import image_environ, load_settings
from tests.support.processes import free_port

pytestmark = pytest.mark.integration
MARKER = b"# cloned from the private test repository\n"


def scan_image(client, ref: str, needle: bytes) -> dict[str, int]:
    """Look for needle in the image's history, its config, and every file of every layer tar.

    Returns how much was scanned; raises AssertionError naming the place if the needle is found.
    """
    history = json.dumps(client.api.history(ref)).encode()
    assert needle not in history, f"{ref}: token in docker history"
    config = json.dumps(client.api.inspect_image(ref)).encode()
    assert needle not in config, f"{ref}: token in the image config"
    saved = io.BytesIO()
    for chunk in client.api.get_image(ref):
        saved.write(chunk)
    saved.seek(0)
    counts = {"layers": 0, "files": 0}
    with tarfile.open(fileobj=saved) as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            data = archive.extractfile(member).read()
            assert needle not in data, f"{ref}: token in {member.name} of the saved image"
            if member.name.endswith("layer.tar"):
                counts["layers"] += 1
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for entry in layer.getmembers():
                        if entry.isfile():
                            counts["files"] += 1
                            content = layer.extractfile(entry).read()
                            assert needle not in content, f"{ref}: token in {entry.name} (layer {member.name})"
    return counts


def private_settings(url: str, **extra: str):
    environ = image_environ(free_port(), free_port(), DEPLOY__SIFU__SOURCE="git",
                            DEPLOY__SIFU__GIT_URL="https://git.example.test/private/sifu.git", **extra)
    settings = load_settings(environ)
    # The test server speaks plain HTTP; the validated config only accepts https.
    return settings.model_copy(update={"sifu": settings.sifu.model_copy(update={"git_url": url})})


def test_token_is_used_for_the_clone_and_appears_in_no_layer(app_image, docker_engine, docker_client, git_server_factory):
    token = f"sifu-test-token-{secrets.token_hex(12)}"
    files = image._package_files(REPO_ROOT, "sifu")
    files["sifu/_private_source.py"] = MARKER
    server = git_server_factory(files, token)
    settings = private_settings(server.url)
    docker = Docker(docker_engine.base_url)
    result = image.ensure_image(settings, docker, network="host", environ={"DEPLOYMENT_TOKEN": token})
    docker.close()
    plan = image.plan(settings)
    assert result.built == [plan.source.ref, plan.final.ref]  # the base was already there
    assert plan.base.ref in result.present

    # The clone really authenticated with the token (git retries with credentials after a 401).
    assert server.refused >= 1
    assert any(token in base64.b64decode(header[6:]).decode() for header in server.auth_seen)
    # Sifu in the image is the private repository's.
    marker = docker_client.containers.run(plan.final.ref, ["cat", "/opt/sifu/sifu/_private_source.py"],
                                          remove=True, network_mode="host")
    assert marker == MARKER

    needle = token.encode()
    for ref in (plan.source.ref, plan.final.ref):
        counts = scan_image(docker_client, ref, needle)
        assert counts["layers"] >= 1 and counts["files"] >= 1
    # The source image holds nothing but Sifu's files.
    source_files = docker_client.containers.create(plan.source.ref, command=["none"])
    try:
        exported = b"".join(source_files.export())
    finally:
        source_files.remove()
    with tarfile.open(fileobj=io.BytesIO(exported)) as archive:
        names = {m.name.split("/")[0] for m in archive.getmembers()}
    assert names <= {"sifu", ".dockerenv", "dev", "etc", "proc", "sys"}


def test_scan_finds_a_token_that_is_in_a_layer(docker_client):
    """Control for the scan above: it does find the bytes when an image holds them."""
    needle = f"visible-token-{secrets.token_hex(8)}".encode()
    with tempfile.TemporaryDirectory() as context:
        Path(context, "Dockerfile").write_text("FROM scratch\nCOPY leaked /leaked\n")
        Path(context, "leaked").write_bytes(needle)
        docker_client.images.build(path=context, tag="sifu-scan-control:latest")
    try:
        with pytest.raises(AssertionError, match=r"token in \S*layer\.tar"):
            scan_image(docker_client, "sifu-scan-control:latest", needle)
    finally:
        docker_client.images.remove("sifu-scan-control:latest", force=True)


def test_private_source_without_token_fails_saying_where_to_put_it(app_image, docker_engine, docker_client):
    environ = image_environ(free_port(), free_port(), DEPLOY__SIFU__SOURCE="git",
                            DEPLOY__SIFU__GIT_URL="https://git.example.test/private/sifu.git",
                            DEPLOY__DEPLOYMENT_TOKEN__FILE="build/no-such-token-file")
    images_before = len(docker_client.images.list(all=True))
    result = run_inv("build-image", "--network", "host", engine=docker_engine, environ=environ)
    assert result.returncode != 0
    assert "set DEPLOYMENT_TOKEN, or put the token in" in result.stderr
    assert "build/no-such-token-file (one line, chmod 600" in result.stderr
    assert len(docker_client.images.list(all=True)) == images_before  # failed before building anything


def test_wrong_token_fails_the_build_without_leaking_it(app_image, docker_engine, git_server_factory):
    server = git_server_factory({"sifu/__init__.py": b""}, token="the-right-token")
    settings = private_settings(server.url)
    wrong = f"wrong-token-{secrets.token_hex(8)}"
    docker = Docker(docker_engine.base_url)
    with pytest.raises(BuildFailed) as failure:
        image.ensure_image(settings, docker, network="host", environ={"DEPLOYMENT_TOKEN": wrong})
    docker.close()
    assert "BuildKit" in str(failure.value)
    assert wrong not in str(failure.value) and wrong not in "\n".join(getattr(failure.value, "log_lines", []))
