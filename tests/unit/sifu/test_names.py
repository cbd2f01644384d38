"""Name validation: edX names accepted, every hostile name refused, no two triples share a path."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from sifu import names
from tests.support.hostile_names import HOSTILE_NAMES

ROOT = Path("/notebooks")


@pytest.mark.parametrize("kind", ["username", "course", "file"])
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_hostile_names_are_refused(kind, name):
    with pytest.raises(names.InvalidName):
        names.check_name(kind, name)


def test_the_corpus_is_big_enough():
    assert len(HOSTILE_NAMES) >= 30


@pytest.mark.parametrize("kind, name", [
    ("username", "alice"), ("username", "a.b-c_d@x+y"), ("username", "Bob99"),
    ("course", "course-v1:Org+Num+Run"), ("course", "course-v1:MITx+6.00.1x+2T2024"), ("course", "Org_Num_Run"),
    ("file", "Lab 1.ipynb"), ("file", "week-2.v3.ipynb"), ("file", "notes (copy).ipynb"), ("file", "a"),
])
def test_edx_names_are_accepted(kind, name):
    assert names.check_name(kind, name) == name


def test_non_strings_are_refused():
    for value in (None, 3, ["a"], {"a": 1}):
        with pytest.raises(names.InvalidName):
            names.check_name("file", value)


def test_paths_stay_under_the_root_and_are_one_component_each():
    path = names.user_path(ROOT, "alice", "course-v1:Org+Num+Run", "Lab 1.ipynb")
    assert path == ROOT / "users" / "alice" / "course-v1:Org+Num+Run" / "Lab 1.ipynb"
    assert names.base_path(ROOT, "c", "f.ipynb") == ROOT / "courses" / "c" / "f.ipynb"
    assert names.jupyter_relative_path("alice", "c", "f.ipynb") == "users/alice/c/f.ipynb"


def test_different_triples_never_share_a_path():
    pieces = ["a", "b", "a.b", "a+b", "a-b", "ab"]
    seen: dict[Path, tuple] = {}
    for triple in itertools.product(pieces, repeat=3):
        path = names.user_path(ROOT, *triple)
        assert seen.setdefault(path, triple) == triple


def test_refusal_messages_name_the_field_without_echoing_the_value():
    with pytest.raises(names.InvalidName) as err:
        names.check_name("course", "bad\nvalue")
    assert str(err.value).startswith("course ") and "\n" not in str(err.value)


def test_json_schema_pattern_agrees_with_the_check():
    import re

    for kind in ("username", "course", "file"):
        pattern = re.compile(names.json_schema_pattern(kind))
        assert pattern.search(names.EXAMPLES[kind])
        assert not pattern.search("a/b")
