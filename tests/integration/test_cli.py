"""The task runner as an operator runs it: ./inv in a subprocess, real files, real exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deployer import REPO_ROOT

pytestmark = pytest.mark.integration

CLIENT_SECRET = "oauth-Client-Secret-7c6b5a"
DB_PASSWORD = "rds-Password-4d3e2f"
INV = str(Path(sys.executable).parent / "inv")


def inv(*args, overrides=None, env=None, tmp_path=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EDX_", "RDS_", "DEPLOY__", "EFS_"))}
    if overrides is not None:
        path = tmp_path / "overrides.yml"
        path.write_text(yaml.safe_dump(overrides))
        environ["OVERRIDES"] = str(path)
    environ.update(env or {})
    return subprocess.run([INV, "--search-root", str(REPO_ROOT), *args], capture_output=True, text=True, env=environ, cwd=tmp_path)


SITE = {
    "edx": {"hostname": "lms.example.org", "oauth2_client_id": "sifu", "oauth2_client_secret": CLIENT_SECRET,
            "oauth2_redirect_uri": "https://lms.example.org/cb"},
    "rds": {"mode": "external", "host": "db.example.org", "password": DB_PASSWORD},
}


def test_list_names_every_task_with_a_description(tmp_path):
    result = inv("--list", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    tasks = [line.split()[0] for line in result.stdout.splitlines()[2:] if line.startswith("  ") and line.split()]
    assert {"config", "render", "plan", "deploy", "test", "bench"} <= set(tasks)
    for line in result.stdout.splitlines()[2:]:
        if line.startswith("  ") and not line.startswith("    "):
            assert len(line.split()) > 1, f"task without a description: {line!r}"


def test_help_documents_each_flag(tmp_path):
    result = inv("--help", "deploy", tmp_path=tmp_path)
    assert result.returncode == 0
    for flag in ("--dry-run", "--json", "--yes", "--no-wait", "--env"):
        assert flag in result.stdout


def test_secrets_never_printed_by_config_render_or_plan(tmp_path):
    outputs = []
    for args in (["config"], ["config", "--json"], ["render", "--out", str(tmp_path / "out")], ["plan", "--json"], ["plan"]):
        result = inv(*args, overrides=SITE, tmp_path=tmp_path)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        outputs.append(result.stdout + result.stderr)
    for text in outputs:
        assert CLIENT_SECRET not in text and DB_PASSWORD not in text
    assert "********" in outputs[0]
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            content = path.read_text()
            assert CLIENT_SECRET not in content and DB_PASSWORD not in content, path


def test_config_shows_sources(tmp_path):
    result = inv("config", "--json", overrides=SITE, env={"EDX_HOSTNAME": "lms2.example.org"}, tmp_path=tmp_path)
    rows = {row["key"]: row for row in json.loads(result.stdout)["settings"]}
    assert rows["edx.hostname"] == {"key": "edx.hostname", "value": "lms2.example.org", "source": "env EDX_HOSTNAME"}
    assert rows["rds.host"]["source"].endswith("overrides.yml")
    assert rows["ports.sifu"]["source"] == "defaults"


def test_bad_config_exits_2_naming_the_key_and_changes_nothing(tmp_path):
    out = tmp_path / "out"
    result = inv("render", "--out", str(out), overrides={"eb": {"regoin": "us-east-1"}}, tmp_path=tmp_path)
    assert result.returncode == 2
    assert "eb.regoin" in result.stderr and "did you mean eb.region" in result.stderr
    assert not out.exists()


def test_plan_json_lists_every_step_and_counts(tmp_path):
    result = inv("plan", "--json", overrides=SITE, tmp_path=tmp_path)
    plan = json.loads(result.stdout)
    numbers = [str(step["number"]) for step in plan["steps"]]
    for seed in range(1, 14):
        assert str(seed) in numbers
    assert any(n.startswith("14") for n in numbers)
    assert plan["aws_calls"] == {"read": 0, "mutate": 0}
    assert plan["bytes_pushed"] == 0
    assert plan["mode"] == "plan"


def test_render_flag_overrides_port_everywhere(tmp_path):
    out = tmp_path / "out"
    result = inv("render", "--out", str(out), "--sifu-port", "4334", overrides=SITE, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "listen 4334;" in (out / "nginx/sifu.conf").read_text()
    assert "--port 4334" in (out / "image/supervisord.conf").read_text()
