"""Operator-side library behind the Invoke tasks."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
