"""Start-up refusals (bad settings, devlms without --dev) and the shared-volume check, on real processes."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.integration.sifu.helpers import COURSE, base_create, user_call
from tests.support.sifu_stack import REPO, base_env, start_sifu

pytestmark = pytest.mark.integration


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("variable, value, says", [
    ("EDX_HOSTNAME", None, "EDX_HOSTNAME is not set"),
    ("EDX_HOSTNAME", "https://lms.example.org", "EDX_HOSTNAME="),
    ("SIFU_SECRET_KEY", "short", "SIFU_SECRET_KEY is shorter than 32"),
    ("SIFU_NOTEBOOK_ROOT", "relative/path", "SIFU_NOTEBOOK_ROOT="),
    ("SIFU_FRAME_ANCESTORS", "https://ok.example 'unsafe-inline'", "SIFU_FRAME_ANCESTORS"),
    ("SIFU_TOKEN_TTL", "forever", "SIFU_TOKEN_TTL"),
    ("EDX_OAUTH2_FORCE_SSL", "maybe", "EDX_OAUTH2_FORCE_SSL"),
    ("SIFU_DATABASE_URL", "postgresql+psycopg://u:p@127.0.0.1:9/none", "database is unusable"),
])
def test_a_bad_setting_stops_start_up_and_names_the_variable(sifu_stack, variable, value, says):
    env = dict(sifu_stack.sifu.env)
    if value is None:
        env.pop(variable)
    else:
        env[variable] = value
    result = _run(["-m", "sifu", "--port", "1", "--check"], env)
    assert result.returncode == 2
    assert says in result.stderr
    assert sifu_stack.secret not in result.stderr and env["EDX_OAUTH2_CLIENT_SECRET"] not in result.stderr


def test_good_settings_pass_the_check(sifu_stack):
    result = _run(["-m", "sifu", "--check"], sifu_stack.sifu.env)
    assert result.returncode == 0, result.stderr


def test_devlms_refuses_to_start_without_development_mode(tmp_path):
    env = base_env(tmp_path) | {"EDX_OAUTH2_CLIENT_SECRET": "x" * 20}
    result = _run(["-m", "devlms", "--port", "1"], env)
    assert result.returncode == 2 and "refusing to start" in result.stderr and "--dev" in result.stderr


def test_writes_need_the_configured_volume_marker(sifu_stack, tmp_path):
    token = sifu_stack.token("alice")
    base_create(sifu_stack.sifu.url, token, COURSE, "volume.ipynb")
    env = dict(sifu_stack.sifu.env, SIFU_VOLUME_ID="fs-0123456789abcdef0")
    guarded = start_sifu(tmp_path, env, name="sifu-volume")
    marker = sifu_stack.root / ".sifu-volume"
    try:
        refused = user_call("POST", guarded.url, token, "alice", COURSE, "volume.ipynb")
        assert refused.status_code == 503 and refused.json()["error"] == "volume_unavailable"
        assert "fs-0123456789abcdef0" in refused.json()["detail"]
        assert not (sifu_stack.root / "users" / "alice" / COURSE / "volume.ipynb").exists()
        marker.write_text("fs-ffffffffffffffff0\n")
        assert user_call("POST", guarded.url, token, "alice", COURSE, "volume.ipynb").status_code == 503
        # Reads still answer: the check guards writes only.
        assert user_call("GET", guarded.url, token, "alice", COURSE, "volume.ipynb").json() == {"result": False}
        marker.write_text("fs-0123456789abcdef0\n")
        assert user_call("POST", guarded.url, token, "alice", COURSE, "volume.ipynb").json() == {"result": True}
        assert httpx.get(guarded.url + "/health").json() == {"status": "ok"}
    finally:
        marker.unlink(missing_ok=True)
        guarded.stop()


def test_jupyter_will_not_start_without_the_signing_secret(tmp_path):
    from tests.support.sifu_stack import start_jupyter

    root = tmp_path / "notebooks"
    root.mkdir()
    with pytest.raises(RuntimeError) as failed:
        start_jupyter(tmp_path, root, secret="", sifu_url="http://127.0.0.1:9")
    assert "exited" in str(failed.value) and "SIFU_SECRET_KEY is missing" in str(failed.value)
