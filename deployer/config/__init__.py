"""The operator's configuration, validated once before anything acts.

- schema.py    what a valid configuration is: the pydantic models, value types, hostile-value refusal
- layers.py    load(): the layers (defaults < answers < overrides < --env < env vars < flags) and their sources
- problems.py  Problem, ConfigError and the report: every problem at once, secrets redacted
- answers.py   saved answers: where they live, how they are saved
"""

from deployer.config.answers import answers_file_path, save_answers
from deployer.config.layers import DEFAULT_OVERRIDES, DEFAULTS_FILE, ENV_VARS, GENERIC_ENV_PREFIX, Layer, Loaded, load, require
from deployer.config.problems import DEPLOY_REQUIRED, REDACTED, ConfigError, Problem, cross_checks, display_value
from deployer.config.schema import SECRET_PATHS, Settings, refuse_hostile

__all__ = [
    "DEFAULTS_FILE", "DEFAULT_OVERRIDES", "DEPLOY_REQUIRED", "ENV_VARS", "GENERIC_ENV_PREFIX", "REDACTED", "SECRET_PATHS",
    "ConfigError", "Layer", "Loaded", "Problem", "Settings",
    "answers_file_path", "cross_checks", "display_value", "load", "refuse_hostile", "require", "save_answers",
]
