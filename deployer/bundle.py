"""The Elastic Beanstalk source bundle: the rendered bundle/ tree as a deterministic zip.

Same rendered files in, same bytes out: entries are sorted, timestamps fixed and modes explicit,
so the version label (a hash of the zip) changes only when the content does.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from deployer.render.tree import Rendered, Tree

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
LABEL_PREFIX = "sifu-"


@dataclass(frozen=True)
class Bundle:
    data: bytes
    names: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def version_label(self) -> str:
        return LABEL_PREFIX + self.sha256[:16]

    @property
    def filename(self) -> str:
        return f"{self.version_label}.zip"


def build(tree: Tree) -> Bundle:
    files: dict[str, Rendered] = tree.under("bundle/")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is honoured on extraction
            info.external_attr = (0o100000 | files[name].mode) << 16
            archive.writestr(info, files[name].content.encode(), compresslevel=9)
    return Bundle(buffer.getvalue(), tuple(sorted(files)))


def write(bundle: Bundle, directory: Path) -> Path:
    """Write the zip once; an existing file with the same name already has the same bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / bundle.filename
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != bundle.sha256:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bundle.data)
        tmp.replace(path)
    return path
