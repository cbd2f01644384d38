"""Saved answers: what the operator chose once (application, environment, platform), asked for no more."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from deployer import REPO_ROOT
from deployer.config.schema import set_path

# Tests and benchmarks point this elsewhere (monkeypatch deployer.config.answers.ANSWERS_FILE).
ANSWERS_FILE = REPO_ROOT / ".deploy-answers.yml"


def answers_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where saved answers live: DEPLOY_ANSWERS_FILE when set (tests, several checkouts), else the repo's."""
    environ = os.environ if environ is None else environ
    return Path(environ["DEPLOY_ANSWERS_FILE"]) if environ.get("DEPLOY_ANSWERS_FILE") else ANSWERS_FILE


def save_answers(env: str | None, answers: dict[str, Any], path: Path | None = None) -> Path:
    """Remember the operator's answers (application, environment, platform) for the next run."""
    path = path or answers_file_path()
    data = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    section = data.setdefault(env or "default", {})
    for key, value in answers.items():
        set_path(section, key, value)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# Answers saved by `inv deploy`; git-ignored. Delete a line to be asked again.\n" + yaml.safe_dump(data, sort_keys=True))
    tmp.replace(path)
    return path
