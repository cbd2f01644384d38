"""What a render produces: the rendered files, by path, and how they are written to disk."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Rendered:
    path: str
    content: str
    kind: str
    mode: int = 0o644
    template: str = ""

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


@dataclass
class Tree:
    files: dict[str, Rendered] = field(default_factory=dict)
    validations: list[str] = field(default_factory=list)

    def under(self, prefix: str) -> dict[str, Rendered]:
        return {path[len(prefix):]: f for path, f in self.files.items() if path.startswith(prefix)}


def write_tree(tree: Tree, out: Path) -> list[Path]:
    """Write every file atomically with its mode; stale files from an earlier render are removed."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    wanted = {out / path for path in tree.files}
    for existing in sorted(out.rglob("*"), reverse=True):
        if existing.is_file() and existing not in wanted:
            existing.unlink()
        elif existing.is_dir() and not any(existing.iterdir()):
            existing.rmdir()
    for path, f in sorted(tree.files.items()):
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(f.content)
        os.chmod(tmp, f.mode)
        tmp.replace(target)
        written.append(target)
    return written
