"""What the operator sees: tables, the checklist with timings, progress. Plain lines without a TTY.

Everything printed goes through `redact`, so a secret that slipped into a message is masked.
"""

from __future__ import annotations

import sys
import threading
from typing import Iterable

_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "********"


def register_secret(value: str | None) -> None:
    """Mask this value in everything printed from now on."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        for secret in sorted(_secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
    return text


def is_tty() -> bool:
    return sys.stdout.isatty()


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=not is_tty())


def say(message: str = "", err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    print(redact(message), file=stream, flush=True)


def table(columns: list[str], rows: Iterable[Iterable[str]], title: str | None = None) -> None:
    rows = [[redact(str(cell)) for cell in row] for row in rows]
    if not is_tty():
        if title:
            say(title)
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        say("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
        for row in rows:
            say("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*row)
    _console().print(t)


STATUS_MARK = {"ok": "ok", "changed": "changed", "planned": "would change", "failed": "FAILED",
               "skipped": "skipped", "pending": "not yet built"}


def step_line(number: int | str, name: str, status: str, seconds: float, detail: str = "") -> str:
    mark = STATUS_MARK.get(status, status)
    line = f"[{number!s:>3}] {name:<40} {mark:<13} {seconds:6.2f}s"
    return f"{line}  {detail}" if detail else line


def step_start(number: int | str, name: str) -> None:
    if is_tty():
        sys.stdout.write(redact(f"[{number!s:>3}] {name} ...") + "\r")
        sys.stdout.flush()


def action_line(text: str) -> str:
    return f"      - {text}"


class MissingAnswer(Exception):
    """A question needs an answer, and there is no TTY to ask on; the message names the flag."""


def choose(question: str, options: list[str], flag: str, default: str | None = None,
           allow_new: bool = False, interactive: bool | None = None) -> str:
    """Ask the operator to pick one of options (or type a new name when allow_new).

    Without a TTY this never blocks: it raises MissingAnswer naming the flag that answers it.
    """
    interactive = is_tty() and sys.stdin.isatty() if interactive is None else interactive
    if not interactive:
        listed = f" (existing: {', '.join(options)})" if options else ""
        raise MissingAnswer(f"{question} needs an answer and there is no terminal to ask on; pass {flag}{listed}")
    say(question)
    for index, option in enumerate(options, 1):
        say(f"  {index}) {option}")
    hint = "number" + (" or a new name" if allow_new else "")
    while True:
        prompt = f"{hint}" + (f" [{default}]" if default else "") + ": "
        answer = input(prompt).strip()
        if not answer and default:
            return default
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1]
        if answer in options or (allow_new and answer):
            return answer
        say(f"please answer with a {hint}")


def confirm(question: str, flag: str = "--yes", assume_yes: bool = False, interactive: bool | None = None) -> bool:
    if assume_yes:
        return True
    interactive = is_tty() and sys.stdin.isatty() if interactive is None else interactive
    if not interactive:
        raise MissingAnswer(f"{question} needs confirmation and there is no terminal to ask on; pass {flag}")
    return input(f"{question} [y/N]: ").strip().lower() in ("y", "yes")


def secret_input(question: str, flag_or_source: str, interactive: bool | None = None) -> str:
    import getpass

    interactive = is_tty() and sys.stdin.isatty() if interactive is None else interactive
    if not interactive:
        raise MissingAnswer(f"{question} is needed and there is no terminal to ask on; {flag_or_source}")
    value = getpass.getpass(f"{question}: ").strip()
    register_secret(value)
    return value
