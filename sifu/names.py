"""Which usernames, course keys and file names are accepted, and where they live on disk.

Names are checked against an allow-list of ASCII characters (no '/', '\\', NUL, controls, look-alike
unicode), must not start with '.', must not contain '..', and are at most MAX_NAME_LENGTH characters,
so a name is always exactly one path component and two different (user, course, file) triples can
never map to one path.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_NAME_LENGTH = 200  # leaves room under NAME_MAX (255) for the temporary-file prefix and suffix

_PATTERNS = {
    # edX usernames: letters, digits, '_', '-', '.', '@', '+'.
    "username": re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*"),
    # Course keys such as course-v1:Org+Num+Run, or the older Org/Num/Run flattened by the XBlock.
    "course": re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.:+~-]*"),
    # Notebook file names, extension included; inner spaces and parentheses are common.
    "file": re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+() -]*[A-Za-z0-9_)+-]|[A-Za-z0-9_+-]"),
}


def json_schema_pattern(kind: str) -> str:
    """The allow-list as a JSON Schema pattern (for /openapi.json; '..' is refused in code as well)."""
    return f"^(?:{_PATTERNS[kind].pattern})$"


EXAMPLES = {"username": "alice", "course": "course-v1:Org+Num+Run", "file": "Lab 1.ipynb"}


class InvalidName(ValueError):
    """A name was refused; the message says which field and why, without echoing control characters."""

    def __init__(self, kind: str, reason: str):
        super().__init__(f"{kind} {reason}")
        self.kind = kind
        self.reason = reason


def check_name(kind: str, value: object) -> str:
    """Return value if it is an acceptable `kind` (username, course, file); raise InvalidName otherwise."""
    if not isinstance(value, str):
        raise InvalidName(kind, "must be a string")
    if not value:
        raise InvalidName(kind, "must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidName(kind, f"is longer than {MAX_NAME_LENGTH} characters")
    if ".." in value:
        raise InvalidName(kind, "must not contain '..'")
    if not _PATTERNS[kind].fullmatch(value):
        raise InvalidName(kind, "has a character that is not allowed (allowed: ASCII letters, digits and " + _allowed(kind) + ")")
    return value


def _allowed(kind: str) -> str:
    return {"username": "_ . @ + -", "course": "_ . : + ~ -", "file": "_ . + ( ) - and inner spaces"}[kind]


def base_path(root: Path, course: str, file: str) -> Path:
    return root / "courses" / check_name("course", course) / check_name("file", file)


def user_path(root: Path, username: str, course: str, file: str) -> Path:
    return root / "users" / check_name("username", username) / check_name("course", course) / check_name("file", file)


def jupyter_relative_path(username: str, course: str, file: str) -> str:
    """The copy's path relative to the notebook root, as Jupyter names it."""
    return "/".join(("users", check_name("username", username), check_name("course", course), check_name("file", file)))
