"""Who may write where on the notebook volume (sifu/storage.py): modes set explicitly, old trees migrated once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sifu import storage


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_students_copy_is_group_writable_and_a_base_is_not(tmp_path):
    old = os.umask(0o077)  # whatever the umask, the modes are the layout's
    try:
        storage.ensure_layout(tmp_path)
        copy = tmp_path / "users" / "alice" / "course" / "a.ipynb"
        base = tmp_path / "courses" / "course" / "a.ipynb"
        assert storage.create_exclusive(copy, b"{}", storage.STUDENT)
        assert storage.create_exclusive(base, b"{}")
        storage.write_atomic(base, b"{ }")
    finally:
        os.umask(old)
    assert mode(tmp_path / "users") == 0o2711  # kernels (each its student's uid) and Jupyter pass; nobody lists
    assert mode(copy) == 0o660 and mode(copy.parent) == 0o2770 and mode(copy.parent.parent) == 0o2770
    assert mode(base) == 0o644 and mode(base.parent) == 0o755 and mode(tmp_path / "courses") == 0o755


def test_an_older_tree_is_migrated_once(tmp_path):
    (tmp_path / "users" / "bob" / "c").mkdir(parents=True)
    (tmp_path / "users" / "bob" / "c" / "n.ipynb").write_text("{}")
    (tmp_path / "courses" / "c").mkdir(parents=True)
    (tmp_path / "courses" / "c" / "n.ipynb").write_text("{}")
    os.chmod(tmp_path / "courses" / "c" / "n.ipynb", 0o666)
    assert storage.ensure_layout(tmp_path) is True
    assert mode(tmp_path / "users" / "bob" / "c" / "n.ipynb") == 0o660
    assert mode(tmp_path / "users" / "bob") == 0o2770
    assert mode(tmp_path / "courses" / "c" / "n.ipynb") == 0o644
    assert storage.ensure_layout(tmp_path) is False  # the marker says it is done
