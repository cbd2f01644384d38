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
import stat
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

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


class PlantedLink(OSError):
    """A folder on the way to a file Sifu writes or deletes is a symlink (a student's kernel owns its folder and
    may plant one); Sifu refuses rather than follow it."""


def _open_folder(anchor: Path | None, target: Path, mode: int | None) -> int:
    """A descriptor of `target`'s folder, reached from `anchor` (a folder only Sifu or root can change: the
    notebook root) one component at a time, none of them followed if it is a symlink (O_NOFOLLOW), so a link a
    student planted in their folder cannot point Sifu at another student's folder or a course. Missing folders
    are created with `mode` (not the umask's) when it is given; FileNotFoundError otherwise. Without an anchor
    the whole path to target's folder is trusted (Sifu's own files: markers, tests)."""
    if anchor is None:
        if mode is not None:
            _make_dirs(target.parent, mode)
        anchor = target.parent
    return _open_below(anchor, target.parent.relative_to(anchor).parts, mode)


def _open_below(anchor: Path, folders: Iterable[str], mode: int | None) -> int:
    """_open_folder's walk: a descriptor of anchor/folders[0]/folders[1]/..., no component followed if a symlink."""
    fd = os.open(anchor, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in folders:
            created = False
            if mode is not None:
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                    created = True
                except FileExistsError:
                    pass
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise PlantedLink(exc.errno, f"{part} is a link or not a folder") from None
                raise
            os.close(fd)
            fd = child
            if created:
                os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _fsync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass  # some network file systems refuse fsync on directories; the rename is still atomic


def _write_temp(folder: int, name: str, data: bytes, mode: int) -> str:
    tmp = f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=folder)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp, dir_fd=folder)
        raise
    return tmp


def write_atomic(target: Path, data: bytes, modes: Modes = COURSE, anchor: Path | None = None) -> None:
    """Replace (or create) target with data: readers see the old file or the new one, never a part. Folders
    below `anchor` (default: target's own folder) are not followed if they are symlinks (_open_folder)."""
    folder = _open_folder(anchor, target, modes.directory)
    try:
        tmp = _write_temp(folder, target.name, data, modes.file)
        try:
            os.replace(tmp, target.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            os.unlink(tmp, dir_fd=folder)
            raise
        _fsync(folder)
    finally:
        os.close(folder)


def create_exclusive(target: Path, data: bytes, modes: Modes = COURSE, anchor: Path | None = None) -> bool:
    """Create target with data unless it exists (as anything, a symlink included). True if this call created it.

    The complete file is written aside, then hard-linked into place: link() fails if the name exists,
    so of two concurrent creators exactly one wins and nobody ever sees a partial file.
    """
    folder = _open_folder(anchor, target, modes.directory)
    try:
        if _lexists(folder, target.name):
            return False
        tmp = _write_temp(folder, target.name, data, modes.file)
        try:
            try:
                os.link(tmp, target.name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                    raise
                # File systems without hard links (s3fs): claim the name with O_EXCL, then fill it.
                return _create_without_links(folder, target.name, data, modes.file)
        finally:
            os.unlink(tmp, dir_fd=folder)
        _fsync(folder)
        return True
    finally:
        os.close(folder)


def _lexists(folder: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _create_without_links(folder: int, name: str, data: bytes, mode: int) -> bool:
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=folder)
    except FileExistsError:
        return False
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def is_file(path: Path, anchor: Path | None = None) -> bool:
    """A regular file (not a symlink to one), reached as _open_folder does."""
    try:
        folder = _open_folder(anchor, path, None)
    except OSError:
        return False
    return _is_regular_in(folder, path.name)


def is_file_below(anchor: Path, relative: str) -> bool:
    """is_file(anchor / relative, anchor) for a '/'-separated path of checked names (sifu.names: no '..', no
    empty part), without pathlib's parsing: the serve path checks a copy on every request."""
    *folders, name = relative.split("/")
    try:
        folder = _open_below(anchor, folders, None)
    except OSError:
        return False
    return _is_regular_in(folder, name)


def _is_regular_in(folder: int, name: str) -> bool:
    """Whether `name` in the open folder is a regular file (a symlink is not); closes the folder."""
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False
    finally:
        os.close(folder)


def read_bytes(path: Path, anchor: Path | None = None) -> bytes | None:
    """The file's bytes, or None when it is missing, not a regular file, or reached through a symlink."""
    try:
        folder = _open_folder(anchor, path, None)
    except OSError:
        return None
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    except OSError:
        return None
    finally:
        os.close(folder)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read()


def remove(path: Path, anchor: Path | None = None) -> bool:
    """Delete path (a symlink there is deleted itself, never its target); True if it existed. Raises
    PlantedLink when a folder on the way is a symlink."""
    try:
        folder = _open_folder(anchor, path, None)
    except FileNotFoundError:
        return False
    try:
        os.unlink(path.name, dir_fd=folder)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False
    finally:
        os.close(folder)
    return True


class Usage(NamedTuple):
    entries: int  # files, folders and links below the folder
    bytes: int  # blocks allocated to them and to the folder itself

    def __add__(self, other: "Usage") -> "Usage":  # type: ignore[override]
        return Usage(self.entries + other.entries, self.bytes + other.bytes)


def folder_usage(fd: int, visit: Callable[[int, str, os.stat_result], None] | None = None) -> Usage:
    """What the open folder `fd` holds, walked by descriptors without following a symlink (so a link cannot
    point the walk elsewhere); `visit(dir_fd, name, lstat)` sees every entry on the way (the kernel broker hands
    them to the student in the same walk)."""
    entries, allocated = 0, os.fstat(fd).st_blocks * 512
    for _directory, subdirs, files, dir_fd in os.fwalk(dir_fd=fd):
        for name in files + subdirs:
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed meanwhile
            entries += 1
            allocated += info.st_blocks * 512
            if visit is not None:
                visit(dir_fd, name, info)
    return Usage(entries, allocated)


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
