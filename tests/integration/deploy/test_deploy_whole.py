"""The whole checklist end to end: the emulated AWS (moto + faithful Elastic Beanstalk), its instance being a
real SSH test host that converge mounts "EFS" on and points nginx from, and a smoke check against a real Sifu
and Jupyter. Stand-ins are listed in tests/support/deploy_bed.py."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

from deployer import REPO_ROOT, checklist, config, steps
from deployer.checklist import beanstalk, bundle
from deployer.checklist.context import Context, Facts
from tests.support.hosts import DEPLOY_HOST, curl

pytestmark = pytest.mark.integration
IMAGE_STEPS = {5, 6, 7, 10, 11}
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sifu-notebooks:"


@pytest.fixture
def run_deploy(deploy_site, tmp_path, monkeypatch, request):
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="test-deploy-", dir=REPO_ROOT / "build"))
    request.addfinalizer(lambda: shutil.rmtree(out, ignore_errors=True))
    monkeypatch.setattr(bundle, "BUNDLE_DIR", out / "bundle")
    monkeypatch.setattr(bundle, "RENDER_DIR", out / "render")
    monkeypatch.setattr(config.answers, "ANSWERS_FILE", tmp_path / "answers.yml")
    monkeypatch.setattr(beanstalk, "EB_CLI_CONFIG_PATH", tmp_path / ".elasticbeanstalk" / "config.yml")

    def run(dry_run=False, tag="aaaa", **env):
        loaded = config.load(environ={**deploy_site, **env})
        lines: list[str] = []
        ctx = Context(loaded=loaded, dry_run=dry_run, assume_yes=True, emit=lines.append,
                            facts=Facts(image_uri=IMAGE + tag), sleep=lambda seconds: None)
        # In process, without the image steps (5-7, 10, 11; test_deploy_cli.py runs them): the URI is a fact.
        built = [s for s in checklist.deploy_steps() if s.number not in IMAGE_STEPS]
        return steps.run(built, ctx, quiet=True), ctx, lines
    return run


def test_deploy_creates_everything_converges_and_smoke_checks_then_changes_nothing(aws, run_deploy, remote_bed,
                                                                                   sifu_stack, tmp_path):
    host = remote_bed.hosts[DEPLOY_HOST]
    report, ctx, lines = run_deploy()
    assert report.failed is None, report.summary()
    status = {str(s.number): s.status for s in report.steps}
    assert status["14e"] == "changed" and status["14f"] == "ok", status
    assert any("Successfully launched environment" in line for line in lines)  # EB's events, streamed
    # Converge reached the instance EB launched (its public IP is the test host) over SSH.
    assert host.mounted_source("/mnt/efs"), "converge did not mount the volume on the instance"
    status_code, body = curl(host.address, 3334, "/health")  # the instance's nginx now reaches its app container
    assert (status_code, body) == (200, f"app {host.app_address}:3334 /health\n")
    smoke = next(s for s in report.steps if s.number == "14f")
    assert "/health answers 200" in smoke.summary and "refuses a request without identity" in smoke.summary
    # Sifu wrote, read back and deleted a notebook as the service token from SSM; nothing is left.
    assert "Sifu wrote, read back and deleted a notebook in course sifu-smoke" in smoke.summary
    assert not list((sifu_stack.root / "courses" / "sifu-smoke").glob("*"))

    # The eb CLI would target the same application and environment.
    eb_cli = yaml.safe_load((tmp_path / ".elasticbeanstalk" / "config.yml").read_text())
    assert eb_cli["global"]["application_name"] == "sifu-notebooks"
    assert eb_cli["branch-defaults"]["default"]["environment"] == "sifu-notebooks-env"
    assert eb_cli["global"]["default_region"] == "us-east-1" and eb_cli["global"]["default_ec2_keyname"] == "sifu-ops"

    again, _, _ = run_deploy()
    assert again.failed is None, again.summary()
    assert again.summary() == "no changes", [(s.number, s.status, s.summary) for s in again.steps]
    assert again.counters.aws_mutate == 0 and again.counters.bytes_pushed == 0


def test_smoke_check_fails_the_deploy_when_jupyter_accepts_anonymous_requests(aws, run_deploy, remote_bed):
    # Point "Jupyter" at the test host's app stand-in, which answers 200 to anyone: the check must refuse it.
    open_server = f"http://{remote_bed.hosts[DEPLOY_HOST].app_address}:3335"
    report, _, _ = run_deploy(DEPLOY__SMOKE__JUPYTER_URL=open_server)
    assert report.failed is not None and report.failed.number == "14f"
    assert "answered 200 without identity" in report.failed.error


def _inv(args, env, cwd):
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("EDX_", "RDS_", "DEPLOY__", "EFS_"))}
    environ.update(env)
    return subprocess.run([str(Path(sys.executable).parent / "inv"), "--search-root", str(REPO_ROOT), *args],
                          capture_output=True, text=True, env=environ, cwd=cwd, stdin=subprocess.DEVNULL, timeout=120)


def test_logs_shows_the_app_container_log_of_each_instance(aws, run_deploy, deploy_site, remote_bed, tmp_path):
    assert run_deploy()[0].failed is None
    host = remote_bed.hosts[DEPLOY_HOST]
    (host.root / "container" / "log").write_text("".join(f"sifu line {n}\n" for n in range(1, 8)))
    result = _inv(["logs", "--tail", "3"], deploy_site, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"==> {host.address} <==" in result.stdout
    assert "sifu line 5\nsifu line 6\nsifu line 7" in result.stdout and "sifu line 4" not in result.stdout
    # No app container on the instance: the host is named and the exit is non-zero.
    (host.root / "container" / "running").unlink()
    result = _inv(["logs"], deploy_site, tmp_path)
    assert result.returncode == 1
    assert (f"{host.address}: expected exactly one running app container matching label=sifu.role=app, found 0"
            in result.stderr)


def test_no_secret_in_the_bundle_rendered_tree_json_or_log_of_a_whole_deploy(aws, run_deploy, monkeypatch):
    """The four secrets of a deploy never reach what the tools produce: the bundle zip, the rendered tree, the
    --json report and the lines a deploy prints. The signing key is generated by the deploy itself, so it is
    read back from SSM (where the container gets it by reference) before the scan."""
    import io
    import json
    import zipfile

    from deployer import ui

    known = {"client secret": "oauth-Client-Secret-Scan-71c", "RDS password": "rds-Password-Scan-93d",
             "deployment token": "deploy-Token-Scan-5e2"}
    monkeypatch.setenv("DEPLOYMENT_TOKEN", known["deployment token"])
    report, ctx, lines = run_deploy(EDX_OAUTH2_CLIENT_SECRET=known["client secret"], RDS_PASSWORD=known["RDS password"],
                                    DEPLOY__RDS__MODE="external", RDS_HOSTNAME="db.example.org")
    assert report.failed is None, report.summary()
    ssm = aws.client("ssm")
    stored = {var: ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
              for var, name in ctx.facts.secret_parameters.items()}
    assert stored["EDX_OAUTH2_CLIENT_SECRET"] == known["client secret"] and stored["RDS_PASSWORD"] == known["RDS password"]
    secrets = {**known, "signing key": stored["SIFU_SECRET_KEY"], "service token": stored["SIFU_SERVICE_TOKEN"]}
    assert len(secrets["signing key"]) >= 32

    produced: dict[str, bytes] = {"--json report": json.dumps(report.as_json()).encode(),
                                  "deploy output": "\n".join(lines).encode(),
                                  "summary": ui.redact(report.summary()).encode()}
    bundles = list(bundle.BUNDLE_DIR.glob("*.zip"))
    assert bundles, "the deploy wrote no bundle"
    for zipped in bundles:
        produced[zipped.name] = zipped.read_bytes()
        with zipfile.ZipFile(io.BytesIO(zipped.read_bytes())) as archive:
            for name in archive.namelist():
                produced[f"{zipped.name}:{name}"] = archive.read(name)
    for path in bundle.RENDER_DIR.rglob("*"):
        if path.is_file():
            produced[str(path.relative_to(bundle.RENDER_DIR))] = path.read_bytes()
    assert any(name.endswith("option-settings.yml") for name in produced)
    found = [(what, where) for what, value in secrets.items() for where, data in produced.items() if value.encode() in data]
    assert found == [], f"secrets found in what the deploy produced: {found}"
    # and the option settings reference them by SSM ARN instead
    options = next(data for name, data in produced.items() if name.endswith("option-settings.yml")).decode()
    assert "arn:aws:ssm:" in options and "SIFU_SECRET_KEY" in options


def test_status_shows_each_instances_students_over_ssh_and_works_without_it(aws, run_deploy, deploy_site, remote_bed,
                                                                            tmp_path):
    """`inv status` after a whole deploy, as an operator runs it without a TTY: the emulated EC2 names the instance,
    SSH reaches it, and sifu.usage (run by the host's docker stand-in on the volume converge mounted) reports the
    student's folder; with the instance's sshd down the table has one line naming it, and --no-ssh skips SSH."""
    assert run_deploy()[0].failed is None
    host = remote_bed.hosts[DEPLOY_HOST]
    folder = remote_bed.export / "users" / "erin"
    folder.mkdir(parents=True)
    (folder / "a.ipynb").write_bytes(b"x" * 40_000)
    try:
        import json
        import shutil

        for path in (folder, folder / "a.ipynb"):
            shutil.chown(path, 2005, 2005)  # her own uid, which runs nothing on the instance yet

        result = _inv(["status", "--json"], deploy_site, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        data = json.loads(result.stdout)
        (instance,) = data["instances"]
        assert data["usage"]["instances"] == [{"instance": instance["id"], "host": host.address, "error": None,
                                               "students": 0, "kernels": 0, "memory_kib": 0}]
        erin = next(r for r in data["usage"]["students"] if r["student"] == "erin")
        assert erin["instance"] is None and erin["disk_kib"] >= 39
        table = _inv(["status"], deploy_site, tmp_path)
        assert table.returncode == 0, table.stdout + table.stderr
        assert "students per instance" in table.stdout and "per student" in table.stdout
        assert any(line.split()[:4] == [instance["id"], "0", "0", "0.0"] for line in table.stdout.splitlines())
        host.stop_ssh()
        try:
            down = _inv(["status"], deploy_site, tmp_path)
            quiet = _inv(["status", "--no-ssh", "--json"], deploy_site, tmp_path)
        finally:
            host.start_ssh()
    finally:
        import shutil

        shutil.rmtree(remote_bed.export / "users")
    assert down.returncode == 0 and "Traceback" not in down.stdout + down.stderr, down.stdout + down.stderr
    (row,) = [line for line in down.stdout.splitlines() if line.startswith(instance["id"]) and "unreachable" in line]
    assert row.split()[1:4] == ["-", "-", "-"]
    assert quiet.returncode == 0 and json.loads(quiet.stdout)["usage"] is None
