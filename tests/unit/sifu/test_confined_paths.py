"""Jupyter serves nothing whose real path leaves the student's folder (sifu.jupyter.confined)."""

from __future__ import annotations

import os

from sifu.jupyter import confined


def test_a_symlink_to_another_students_file_leaves_the_folder(tmp_path):
    (tmp_path / "users" / "alice").mkdir(parents=True)
    (tmp_path / "users" / "bob").mkdir(parents=True)
    (tmp_path / "users" / "alice" / "secret.ipynb").write_text("{}")
    (tmp_path / "users" / "bob" / "mine.ipynb").write_text("{}")
    os.symlink(tmp_path / "users" / "alice" / "secret.ipynb", tmp_path / "users" / "bob" / "stolen.ipynb")
    os.symlink("../alice", tmp_path / "users" / "bob" / "dir")
    root = str(tmp_path)
    assert confined(root, str(tmp_path / "users" / "bob" / "mine.ipynb"))
    assert confined(root, str(tmp_path / "users" / "bob"))
    assert not confined(root, str(tmp_path / "users" / "bob" / "stolen.ipynb"))
    assert not confined(root, str(tmp_path / "users" / "bob" / "dir" / "secret.ipynb"))


def test_a_symlinked_notebook_root_is_fine(tmp_path):
    (tmp_path / "real" / "users" / "bob").mkdir(parents=True)
    os.symlink(tmp_path / "real", tmp_path / "root")
    assert confined(str(tmp_path / "root"), str(tmp_path / "root" / "users" / "bob" / "x.ipynb"))
