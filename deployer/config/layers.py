"""Layered configuration: load, merge, validate once, before anything acts.

Layers, lowest first:
defaults < saved answers < overrides file < `environments.<name>` < environment variables < flags.
Every leaf remembers which layer set it, so `inv config` can say where a value came from.
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from deployer import REPO_ROOT
from deployer.config.answers import answers_file_path
from deployer.config.problems import ConfigError, Problem, cross_checks, display_value, pydantic_problems
from deployer.config.schema import Settings, leaves, set_path

DEFAULTS_FILE = REPO_ROOT / "config" / "defaults.yml"
DEFAULT_OVERRIDES = REPO_ROOT / "config" / "overrides.yml"

# Documented environment variables. The seed's names are kept; every other setting can be
# set as DEPLOY__<SECTION>__<KEY> (for example DEPLOY__EB__INSTANCE_TYPE=t3.large).
ENV_VARS = {
    "EDX_HOSTNAME": "edx.hostname",
    "EDX_OAUTH2_CLIENT_ID": "edx.oauth2_client_id",
    "EDX_OAUTH2_CLIENT_SECRET": "edx.oauth2_client_secret",
    "EDX_OAUTH2_CLIENT_REDIRECT_URI": "edx.oauth2_redirect_uri",
    "EDX_OAUTH2_FORCE_SSL": "edx.force_ssl",
    "EFS_ID": "efs.file_system_id",
    "RDS_DB_NAME": "rds.db_name",
    "RDS_PORT": "rds.port",
    "RDS_USERNAME": "rds.username",
    "RDS_PASSWORD": "rds.password",
    "RDS_HOSTNAME": "rds.host",
    "AWS_PROFILE": "aws.profile",
}
GENERIC_ENV_PREFIX = "DEPLOY__"


@dataclass(frozen=True)
class Layer:
    source: str
    data: dict


@dataclass
class Loaded:
    """Validated settings plus where each value came from."""

    settings: Settings
    sources: dict[str, str]
    env_name: str | None = None
    overrides_file: Path | None = None
    layers: list[Layer] = field(default_factory=list, repr=False)

    def rows(self) -> list[tuple[str, str, str]]:
        """(key path, display value, source) for every setting, secrets redacted."""
        return [(path, display_value(path, value), self.sources.get(path, "defaults")) for path, value in leaves(self.settings.model_dump())]


def _read_yaml(path: Path, label: str) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError([Problem(label, f"is not valid YAML{where}: {getattr(exc, 'problem', exc)}; fix the file")]) from None
    if not isinstance(data, dict):
        raise ConfigError([Problem(label, "must be a YAML mapping of sections (like the template); fix the file")])
    return data


def _unknown_keys(data: dict, known: dict, source: str, prefix: str = "") -> list[Problem]:
    problems = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in known:
            candidates = [k for k in known]
            suggestion = difflib.get_close_matches(str(key), candidates, n=1, cutoff=0.5)
            if not suggestion:  # maybe it belongs in another section
                everything = [p for p, _ in leaves(_defaults_tree())]
                suggestion = difflib.get_close_matches(path, everything, n=1, cutoff=0.6)
                hint = f"did you mean {suggestion[0]}?" if suggestion else "see config/defaults.yml for the known settings"
            else:
                hint = f"did you mean {prefix}{suggestion[0]}?"
            problems.append(Problem(path, f"unknown setting; {hint}", source=source))
        elif isinstance(known[key], dict):
            if not isinstance(value, dict):
                problems.append(Problem(path, "must be a section (a mapping of settings), not a single value", display_value(path, value), source))
            else:
                problems.extend(_unknown_keys(value, known[key], source, path + "."))
    return problems


_DEFAULTS_CACHE: dict | None = None


def _defaults_tree() -> dict:
    global _DEFAULTS_CACHE
    if _DEFAULTS_CACHE is None:
        _DEFAULTS_CACHE = _read_yaml(DEFAULTS_FILE, str(DEFAULTS_FILE.relative_to(REPO_ROOT)))
    return _DEFAULTS_CACHE


def _env_layer(environ: dict[str, str]) -> list[Layer]:
    defaults = dict(leaves(_defaults_tree()))
    layers = []
    for var, path in ENV_VARS.items():
        if var in environ:
            layers.append(Layer(f"env {var}", _typed_env(path, environ[var], defaults)))
    for var, raw in sorted(environ.items()):
        if var.startswith(GENERIC_ENV_PREFIX):
            path = var[len(GENERIC_ENV_PREFIX):].lower().replace("__", ".")
            layers.append(Layer(f"env {var}", _typed_env(path, raw, defaults)))
    return layers


def _typed_env(path: str, raw: str, defaults: dict) -> dict:
    value: Any = raw
    if isinstance(defaults.get(path), list):
        value = [item.strip() for item in raw.split(",") if item.strip()]
    data: dict = {}
    set_path(data, path, value)
    return data


def _merge(layers: list[Layer]) -> tuple[dict, dict[str, str]]:
    merged: dict = {}
    sources: dict[str, str] = {}

    def walk(target: dict, data: dict, source: str, prefix: str) -> None:
        for key, value in data.items():
            path = prefix + key
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                walk(target[key], value, source, path + ".")
            else:
                target[key] = copy.deepcopy(value)
                for leaf, _ in leaves({key: value}, prefix) if isinstance(value, dict) else [(path, value)]:
                    sources[leaf] = source

    for layer in layers:
        walk(merged, layer.data, layer.source, "")
    return merged, sources


def load(
    env: str | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    overrides_file: Path | str | None = None,
    answers_file: Path | None = None,
) -> Loaded:
    """Load every layer, merge, validate. Raises ConfigError listing every problem at once."""
    environ = dict(os.environ if environ is None else environ)
    overrides_path = Path(overrides_file or environ.get("OVERRIDES") or DEFAULT_OVERRIDES)
    answers_path = answers_file or answers_file_path(environ)
    defaults = _defaults_tree()
    layers = [Layer("defaults", defaults)]
    problems: list[Problem] = []

    if answers_path.exists():
        saved = _read_yaml(answers_path, answers_path.name).get(env or "default") or {}
        layers.append(Layer(f"answers ({answers_path.name})", saved))

    overrides: dict = {}
    label = _label(overrides_path)
    if overrides_path.exists():
        overrides = _read_yaml(overrides_path, label)
    elif "OVERRIDES" in environ or overrides_file:
        raise ConfigError([Problem("OVERRIDES", f"file {label} does not exist; fix the path or unset OVERRIDES")])
    environments = overrides.pop("environments", None) or {}
    if not isinstance(environments, dict):
        raise ConfigError([Problem("environments", "must map environment names to settings", source=label)])
    layers.append(Layer(label, overrides))
    if env:
        if env not in environments:
            known = ", ".join(sorted(environments)) or "none defined"
            raise ConfigError([Problem("--env", f"no environment named {env!r} under `environments:` in {label} (known: {known})")])
        layers.append(Layer(f"{label} environments.{env}", environments[env] or {}))
    layers += _env_layer(environ)
    if flags:
        flag_data: dict = {}
        for path, value in flags.items():
            set_path(flag_data, path, value)
        layers.append(Layer("flag", flag_data))

    for layer in layers[1:]:
        problems += _unknown_keys(layer.data, defaults, layer.source)
    if problems:
        raise ConfigError(problems)

    merged, sources = _merge(layers)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(pydantic_problems(exc, merged, sources, dict(leaves(defaults)))) from None
    problems = cross_checks(settings, sources)
    if problems:
        raise ConfigError(problems)
    return Loaded(settings, sources, env, overrides_path if overrides_path.exists() else None, layers)


def require(loaded: Loaded, paths: list[str], purpose: str) -> None:
    """Settings that may be empty in general but are needed for `purpose`."""
    missing = [p for p in paths if not _is_set(loaded.settings.get(p))]
    if missing:
        raise ConfigError([Problem(p, f"is required to {purpose}; set it in your overrides", source=loaded.sources.get(p, "defaults")) for p in missing])


def _is_set(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value not in ("", None, [])


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


