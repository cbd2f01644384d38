"""What every task shares: loading config with plain errors, and the --env/--json conventions."""

from __future__ import annotations

import sys
from typing import Any

from invoke import Exit

ENV_HELP = "named environment from `environments:` in the overrides file (staging, production...)"
JSON_HELP = "print machine-readable JSON instead of the checklist"


def load_config(env: str | None = None, flags: dict[str, Any] | None = None):
    """Load and validate config once; on error print every problem and exit 2, having done nothing."""
    from deployer.config import ConfigError, load

    try:
        return load(env=env or None, flags={k: v for k, v in (flags or {}).items() if v is not None})
    except ConfigError as exc:
        raise Exit(str(exc), code=2) from None


def fail(message: str, code: int = 1) -> Exit:
    return Exit(message, code=code)


def is_tty() -> bool:
    return sys.stdout.isatty() and sys.stdin.isatty()
