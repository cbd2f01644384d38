"""Integration tests against the emulated AWS (moto server + faithful Elastic Beanstalk)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from deployer import REPO_ROOT, config, steps
from deployer.checklist import beanstalk, bundle, registry, storage
from deployer.checklist.context import Context, Facts
from tests.support.aws import aws, moto_server  # noqa: F401  (fixtures)

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sifu-notebooks:"


def deploy_steps() -> list:
    """Seed order, as checklist.deploy_steps() runs them, without the image steps (tests/integration/deploy runs
    those) and the instance steps (no instances here)."""
    return [registry.Credentials(), registry.RegistryStatus(), registry.RegistryAccess(), registry.RegistryLogin(),
            beanstalk.EbApplication(), beanstalk.EbEnvironment(), bundle.Ports(), storage.EfsStorage(),
            storage.ManagedDatabase(), storage.Secrets(), bundle.RenderBundle(), beanstalk.ApplicationVersion(),
            beanstalk.DeployEnvironment(), beanstalk.WaitReady()]


@pytest.fixture
def deploy(aws, tmp_path, monkeypatch, request):
    """deploy(dry_run=False, tag=..., step_list=None, **env) -> (report, ctx, streamed lines), in process."""
    # RenderBundle reports paths relative to the repository, so its output goes to a private dir in build/.
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="test-aws-", dir=REPO_ROOT / "build"))
    request.addfinalizer(lambda: shutil.rmtree(out, ignore_errors=True))
    monkeypatch.setattr(bundle, "BUNDLE_DIR", out / "bundle")
    monkeypatch.setattr(bundle, "RENDER_DIR", out / "render")
    monkeypatch.setattr(config.answers, "ANSWERS_FILE", tmp_path / "answers.yml")
    # Subprocess tasks (inv status/rollback/destroy) read this file too; poll the emulator quickly.
    (tmp_path / "overrides.yml").write_text("eb:\n  poll_interval: 0.2\n")
    aws.client("ec2").create_key_pair(KeyName="sifu-ops")

    def deploy(dry_run: bool = False, tag: str = "aaaa", step_list: list | None = None, **env: str):
        loaded = config.load(environ={"DEPLOY__EB__KEY_NAME": "sifu-ops", "EDX_OAUTH2_CLIENT_SECRET": "oauth-secret",
                                      **env}, overrides_file=tmp_path / "overrides.yml")
        events: list[str] = []
        ctx = Context(loaded=loaded, dry_run=dry_run, assume_yes=True, emit=events.append,
                            facts=Facts(image_uri=IMAGE + tag), sleep=lambda seconds: None)
        report = steps.run(step_list or deploy_steps(), ctx, quiet=True)
        return report, ctx, events
    return deploy
