"""A per-student cap on running kernels (issue 13, "Limits users can see"): one more kernel than
jupyter.max_kernels_per_student is refused with a 409 naming the cap, the student's kernels keep working,
and other students are unaffected."""

from __future__ import annotations

import shutil
from urllib.parse import quote

import pytest

from tests.integration.sifu.helpers import COURSE, prepare_copy
from tests.support.jupyter_client import JupyterSession, execute
from tests.support.sifu_stack import _workdir, start_stack

pytestmark = pytest.mark.integration
CAP = 2


@pytest.fixture(scope="module")
def capped_stack():
    workdir = _workdir("sifu-kernel-cap-")
    stack = start_stack(workdir, jupyter_settings={"max_kernels_per_student": CAP})
    yield stack
    stack.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def _student(stack, username: str, files: list[str]) -> JupyterSession:
    token = stack.token(username)
    for file in files:
        prepare_copy(stack.sifu.url, token, username, COURSE, file)
    client = JupyterSession(stack.jupyter.url, stack.identity_cookie(username, token=token))
    assert client.prime_xsrf(f"/notebooks/users/{username}/{quote(COURSE)}/{files[0]}").status_code == 200
    return client


def test_one_kernel_past_the_cap_is_refused_and_the_others_keep_working(capped_stack):
    assert f"max_kernels_per_student = {CAP}\n" in capped_stack.jupyter.config_path.read_text()
    files = [f"cap{i}.ipynb" for i in range(CAP + 1)]
    alice = _student(capped_stack, "alice", files)
    bob = _student(capped_stack, "bob", files[:1])
    try:
        kernels = []
        for file in files[:CAP]:
            reply = alice.start_session(f"users/alice/{COURSE}/{file}")
            assert reply.status_code == 201, reply.text
            kernels.append(reply.json()["kernel"]["id"])

        refused = alice.start_session(f"users/alice/{COURSE}/{files[CAP]}")
        assert refused.status_code == 409, refused.text
        assert f"{CAP} kernels" in refused.json()["message"], refused.text
        assert {k["id"] for k in alice.http.get("/api/kernels").json()} == set(kernels)
        for kernel in kernels:
            assert execute(capped_stack.jupyter.url, kernel, alice.cookie_header(), "6*7") == "42"

        theirs = bob.start_session(f"users/bob/{COURSE}/{files[0]}")
        assert theirs.status_code == 201, theirs.text

        # Shutting one down frees a place.
        session = next(s for s in alice.http.get("/api/sessions").json() if s["kernel"]["id"] == kernels[0])
        assert alice.request("DELETE", f"/api/sessions/{session['id']}").status_code == 204
        again = alice.start_session(f"users/alice/{COURSE}/{files[CAP]}")
        assert again.status_code == 201, again.text
    finally:
        alice.close()
        bob.close()


def test_concurrent_starts_cannot_pass_the_cap_together(capped_stack):
    from concurrent.futures import ThreadPoolExecutor

    files = [f"race{i}.ipynb" for i in range(CAP + 2)]
    bob = _student(capped_stack, "bob", files)  # devlms knows alice and bob only; bob may hold a kernel already
    try:
        places = CAP - len(bob.http.get("/api/kernels").json())
        with ThreadPoolExecutor(len(files)) as pool:
            codes = sorted(pool.map(lambda file: bob.start_session(f"users/bob/{COURSE}/{file}").status_code, files))
        assert codes == [201] * places + [409] * (len(files) - places), codes
        assert len(bob.http.get("/api/kernels").json()) == CAP
    finally:
        bob.close()
