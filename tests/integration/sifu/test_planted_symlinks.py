"""A symlink a student plants in their own folder (their kernel owns it) never makes Sifu write, overwrite or
delete what it points at: Sifu reaches `users/<name>/<course>/<file>` one component at a time without following
a symlink (sifu/storage.py). Process mode: the test plays the student's kernel and plants the links itself."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.integration.sifu.helpers import COURSE, base_create, prepare_copy, serve_url, user_call

pytestmark = pytest.mark.integration

# Module-scoped stack: each test plants its link under a course name of its own.
LINK1, LINK2, LINK3, LINK4 = (f"course-v1:Org+Link{n}+Run" for n in (1, 2, 3, 4))



def test_deleting_a_copy_through_a_planted_folder_link_deletes_nothing_of_another_student(sifu_stack):
    url, root = sifu_stack.sifu.url, sifu_stack.root
    alice, bob = sifu_stack.token("alice"), sifu_stack.token("bob")
    prepare_copy(url, bob, "bob", COURSE, "lab.ipynb")
    prepare_copy(url, alice, "alice", COURSE, "lab.ipynb")
    bobs = root / "users" / "bob" / COURSE / "lab.ipynb"
    # alice's "other course" folder is a link to bob's folder of the first course
    os.symlink(f"../bob/{COURSE}", root / "users" / "alice" / LINK1)

    reply = user_call("DELETE", url, alice, "alice", LINK1, "lab.ipynb")

    assert reply.status_code == 409, reply.text
    assert "link" in reply.json()["detail"]
    assert bobs.is_file()
    assert user_call("GET", url, bob, "bob", COURSE, "lab.ipynb").json() == {"result": True}


def test_deleting_a_copy_through_a_planted_link_to_the_course_keeps_the_base_notebook(sifu_stack):
    url, root = sifu_stack.sifu.url, sifu_stack.root
    alice = sifu_stack.token("alice")
    prepare_copy(url, alice, "alice", COURSE, "lab.ipynb")
    os.symlink(f"../../courses/{COURSE}", root / "users" / "alice" / LINK2)

    assert user_call("DELETE", url, alice, "alice", LINK2, "lab.ipynb").status_code == 409

    assert (root / "courses" / COURSE / "lab.ipynb").is_file()


def test_copying_through_a_planted_folder_link_writes_nothing_into_another_students_folder(sifu_stack):
    url, root = sifu_stack.sifu.url, sifu_stack.root
    alice, bob = sifu_stack.token("alice"), sifu_stack.token("bob")
    prepare_copy(url, bob, "bob", COURSE, "lab.ipynb")
    assert base_create(url, alice, LINK3, "extra.ipynb").status_code == 200
    (root / "users" / "alice").mkdir(exist_ok=True)
    os.symlink(f"../bob/{COURSE}", root / "users" / "alice" / LINK3)

    reply = user_call("POST", url, alice, "alice", LINK3, "extra.ipynb")

    assert reply.status_code == 409, reply.text
    assert sorted(os.listdir(root / "users" / "bob" / COURSE)) == ["lab.ipynb"]  # no copy, no temporary file


def test_a_planted_link_in_place_of_a_copy_is_neither_followed_nor_reported_as_the_copy(sifu_stack):
    """A link in place of the file itself: deleting removes the link only, and Sifu does not say the copy exists
    (it did: it followed the link to bob's file), so it does not serve the link's target either."""
    url, root = sifu_stack.sifu.url, sifu_stack.root
    alice, bob = sifu_stack.token("alice"), sifu_stack.token("bob")
    prepare_copy(url, bob, "bob", COURSE, "lab.ipynb")
    prepare_copy(url, alice, "alice", COURSE, "lab.ipynb")
    link = root / "users" / "alice" / COURSE / "notes.ipynb"
    os.symlink(f"../../bob/{COURSE}/lab.ipynb", link)

    assert user_call("GET", url, alice, "alice", COURSE, "notes.ipynb").json() == {"result": False}
    assert user_call("DELETE", url, alice, "alice", COURSE, "notes.ipynb").status_code == 200

    assert not os.path.lexists(link)
    assert (root / "users" / "bob" / COURSE / "lab.ipynb").is_file()


def test_serve_opens_no_copy_through_a_planted_link(sifu_stack):
    """The iframe URL signs an identity only for a regular file reached without following a link: neither a link
    in place of the copy nor a link in place of the course folder (both to bob's copy) gets a redirect or a cookie."""
    url, root = sifu_stack.sifu.url, sifu_stack.root
    alice, bob = sifu_stack.token("alice"), sifu_stack.token("bob")
    prepare_copy(url, bob, "bob", COURSE, "lab.ipynb")
    prepare_copy(url, alice, "alice", COURSE, "lab.ipynb")
    os.symlink(f"../../bob/{COURSE}/lab.ipynb", root / "users" / "alice" / COURSE / "linked.ipynb")
    os.symlink(f"../bob/{COURSE}", root / "users" / "alice" / LINK4)

    for course, file in ((COURSE, "linked.ipynb"), (LINK4, "lab.ipynb")):
        reply = httpx.get(serve_url(url, "alice", course, file, alice))
        assert reply.status_code == 404 and "set-cookie" not in reply.headers, (course, file)
    assert httpx.get(serve_url(url, "alice", COURSE, "lab.ipynb", alice)).status_code == 302
