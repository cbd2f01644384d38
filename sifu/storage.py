"""Notebook files on the shared volume: atomic writes, exclusive creation, and the volume check."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

VOLUME_MARKER = ".sifu-volume"


class VolumeUnavailable(Exception):
    """The notebook root is not the configured shared volume; writing now would strand notebooks."""


def check_volume(root: Path, volume_id: str) -> None:
    """When a volume id is configured, `<root>/.sifu-volume` must hold it (the mount step writes it)."""
    if not volume_id:
        return
    marker = root / VOLUME_MARKER
    try:
        found = marker.read_text().strip()
    except OSError:
        raise VolumeUnavailable(
            f"the notebook root has no {VOLUME_MARKER} marker, so the shared volume {volume_id} is not mounted "
            "there; mount it (inv converge) before notebooks are written"
        ) from None
    if found != volume_id:
        raise VolumeUnavailable(
            f"the notebook root holds volume {found!r}, not the configured {volume_id!r}; "
            "mount the right file system or fix SIFU_VOLUME_ID"
        )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some network file systems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def _write_temp(target: Path, data: bytes) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(target: Path, data: bytes) -> None:
    """Replace (or create) target with data: readers see the old file or the new one, never a part."""
    tmp = _write_temp(target, data)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def create_exclusive(target: Path, data: bytes) -> bool:
    """Create target with data unless it exists. True if this call created it.

    The complete file is written aside, then hard-linked into place: link() fails if the name exists,
    so of two concurrent creators exactly one wins and nobody ever sees a partial file.
    """
    if target.exists():
        return False
    tmp = _write_temp(target, data)
    try:
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # File systems without hard links (s3fs): claim the name with O_EXCL, then fill it.
            return _create_without_links(target, data)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    return True


def _create_without_links(target: Path, data: bytes) -> bool:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def remove(path: Path) -> bool:
    """Delete path; True if it existed."""
    try:
        path.unlink()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False
    return True
