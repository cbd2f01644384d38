"""The template engine: one jinja2 environment over the repository, strict about undefined names."""

from __future__ import annotations

from typing import Any

from deployer import REPO_ROOT


class RenderError(Exception):
    """A template failed to render or its output failed validation; nothing was written."""


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(REPO_ROOT)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_template(template: str, context: dict[str, Any]) -> str:
    import jinja2

    try:
        return _environment().get_template(template).render(**context)
    except jinja2.TemplateError as exc:
        where = f" line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        raise RenderError(f"{template}{where}: {exc}") from None
