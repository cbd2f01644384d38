"""Notebook files on the shared volume: atomic writes, exclusive creation, the volume check, and who may
write where.

In the container Sifu and Jupyter run as two users (sifu; jupyter, in sifu's group), and each student's
kernels run as that student's own uid (sifu/kernel_broker.py). So the modes carry the wall between them:
- courses/: the base notebooks, written by Sifu only: directories 0755, files 0644.
- users/: traversable but not listable (02711): a kernel reaches its own folder by name, nobody lists them.
- every student's folder below it and each file in it readable and writable by its owner and by the group
  (02770, 0660; setgid so new files keep the group), since Jupyter saves the copies Sifu made. Sifu creates
  a folder as its own user; the kernel broker hands it (and what is in it) to the student's uid before
  their first kernel starts, and refuses a folder owned by any other student's uid.
Modes are set explicitly (not left to the umask). ensure_layout() brings an older tree to these modes once.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import NamedTuple

VOLUME_MARKER = ".sifu-volume"
LAYOUT_MARKER = ".sifu-layout"
LAYOUT_VERSION = "3"


class Modes(NamedTuple):
    directory: int
    file: int


COURSE = Modes(0o755, 0o644)
STUDENT = Modes(0o2770, 0o660)
USERS_DIR_MODE = 0o2711


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


def _make_dirs(directory: Path, mode: int) -> None:
    """Create `directory` and missing parents with `mode` (not the umask's); existing ones are left alone."""
    if directory.is_dir():
        return
    _make_dirs(directory.parent, mode)
    try:
        directory.mkdir()
    except FileExistsError:
        return
    os.chmod(directory, mode)


def _write_temp(target: Path, data: bytes, modes: Modes) -> Path:
    _make_dirs(target.parent, modes.directory)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, modes.file)
    try:
        os.fchmod(fd, modes.file)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(target: Path, data: bytes, modes: Modes = COURSE) -> None:
    """Replace (or create) target with data: readers see the old file or the new one, never a part."""
    tmp = _write_temp(target, data, modes)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def create_exclusive(target: Path, data: bytes, modes: Modes = COURSE) -> bool:
    """Create target with data unless it exists. True if this call created it.

    The complete file is written aside, then hard-linked into place: link() fails if the name exists,
    so of two concurrent creators exactly one wins and nobody ever sees a partial file.
    """
    if target.exists():
        return False
    tmp = _write_temp(target, data, modes)
    try:
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # File systems without hard links (s3fs): claim the name with O_EXCL, then fill it.
            return _create_without_links(target, data, modes.file)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    return True


def _create_without_links(target: Path, data: bytes, mode: int) -> bool:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    os.fchmod(fd, mode)
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


def _chmod_tree(top: Path, modes: Modes) -> None:
    """Set `modes` on everything below `top` that this user owns (Jupyter's own files keep theirs)."""
    for directory, subdirs, files in os.walk(top):
        for name, mode in [*((d, modes.directory) for d in subdirs), *((f, modes.file) for f in files)]:
            path = os.path.join(directory, name)
            try:
                if not os.path.islink(path):
                    os.chmod(path, mode)
            except PermissionError:
                pass


def ensure_layout(root: Path) -> bool:
    """courses/ and users/ with the modes above; a tree from before them is migrated once. True if it changed."""
    marker = root / LAYOUT_MARKER
    try:
        if marker.read_text().strip() == LAYOUT_VERSION:
            return False
    except OSError:
        pass
    courses, users = root / "courses", root / "users"
    _make_dirs(courses, COURSE.directory)
    _make_dirs(users, USERS_DIR_MODE)
    os.chmod(courses, COURSE.directory)
    os.chmod(users, USERS_DIR_MODE)
    _chmod_tree(courses, COURSE)
    _chmod_tree(users, STUDENT)
    write_atomic(marker, (LAYOUT_VERSION + "\n").encode())
    return True
