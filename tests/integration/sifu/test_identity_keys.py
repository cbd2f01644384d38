"""The identity wall (issue 13, item 1), on the real stack: Jupyter holds only the public half of Sifu's
identity key, so neither Jupyter's environment nor code in a student's kernel can mint a cookie Jupyter
accepts; and a validly signed cookie for one user on another user's token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from sifu import signing
from sifu.db import hash_token
from tests.integration.sifu.helpers import COURSE, prepare_copy, students_kernel
from tests.support.jupyter_client import JupyterSession, execute

pytestmark = pytest.mark.integration
FILE = "identity.ipynb"

# Run in the attacker's kernel: everything Jupyter's process and the kernel hold, and every cookie that can be
# made from it (an HMAC of each value, the old v1 format, the public key as a "secret").
HOSTILE_CELL = r'''
import base64, hashlib, hmac, json, os, time, urllib.request
def environ(pid):
    try:
        return dict(l.split("=", 1) for l in open(f"/proc/{pid}/environ").read().split("\0") if "=" in l)
    except OSError:
        return {}
seen = dict(os.environ) | environ(os.getppid())
payload = "v2.bob.%d.%s" % (time.time() + 3600, SESSION)
attempts = []
for value in seen.values():
    mac = base64.urlsafe_b64encode(hmac.new(value.encode(), payload.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    attempts += [payload + "." + mac, payload.replace("v2.", "v1.") + "." + mac]
accepted = 0
for cookie in attempts:
    req = urllib.request.Request(JUPYTER + "/api/contents/users/bob", headers={"Cookie": "sifu_identity=" + cookie})
    try:
        urllib.request.urlopen(req, timeout=10)
        accepted += 1
    except urllib.error.HTTPError:
        pass
json.dumps({"secret_in_reach": any(k == "SIFU_SECRET_KEY" or k.startswith(("EDX_", "RDS_")) for k in seen),
            "attempts": len(attempts), "accepted": accepted, "answer": 6 * 7})
'''


@pytest.fixture(scope="module")
def students(sifu_stack):
    tokens = {name: sifu_stack.token(name) for name in ("alice", "bob")}
    for name, token in tokens.items():
        prepare_copy(sifu_stack.sifu.url, token, name, COURSE, FILE)
    return tokens


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(line.split("=", 1) for line in raw.split("\0") if "=" in line)


def test_jupyter_holds_the_public_key_only(sifu_stack):
    env = environ_of(sifu_stack.jupyter.proc.popen.pid)
    assert "SIFU_SECRET_KEY" not in env and not any(k.startswith(("EDX_", "RDS_")) for k in env)
    assert sifu_stack.secret not in "\0".join(env.values())
    assert env[signing.PUBLIC_KEY_VARIABLE] == signing.public_key_text(sifu_stack.secret.encode())
    assert sifu_stack.secret not in sifu_stack.jupyter.config_path.read_text()


def test_nothing_in_jupyters_environment_or_config_mints_an_accepted_cookie(sifu_stack, students):
    env = environ_of(sifu_stack.jupyter.proc.popen.pid)
    candidates = [*env.values(), sifu_stack.jupyter.config_path.read_text()]
    session = hash_token(students["bob"])
    payload = f"v2.bob.{int(time.time()) + 3600}.{session}"
    for value in candidates:
        key = value.encode()
        mac = base64.urlsafe_b64encode(hmac.new(key, payload.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
        for cookie in (f"{payload}.{mac}", signing.sign_identity(key, "bob", int(time.time()) + 3600, session)):
            reply = httpx.get(f"{sifu_stack.jupyter.url}/api/contents/users/bob", cookies={signing.COOKIE_NAME: cookie})
            assert reply.status_code == 403


def test_a_cookie_for_one_user_on_another_users_token_is_refused(sifu_stack, students):
    """Signed with Sifu's own key, but the token behind it is alice's: Jupyter compares the owner."""
    forged = {signing.COOKIE_NAME: signing.sign_identity(sifu_stack.secret.encode(), "bob", int(time.time()) + 3600,
                                                          hash_token(students["alice"]))}
    assert httpx.get(f"{sifu_stack.jupyter.url}/api/contents/users/bob", cookies=forged).status_code == 403
    genuine = sifu_stack.identity_cookie("bob", token=students["bob"])
    assert httpx.get(f"{sifu_stack.jupyter.url}/api/contents/users/bob", cookies=genuine).status_code == 200


def test_a_hostile_cell_cannot_mint_an_identity_and_its_kernel_still_answers(sifu_stack, students):
    with students_kernel(sifu_stack, students["alice"], "alice", FILE) as (alice, kernel):
        code = f"SESSION = {hash_token(students['bob'])!r}; JUPYTER = {sifu_stack.jupyter.url!r}\n" + HOSTILE_CELL
        result = json.loads(execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(), code).strip("'"))
        assert result["attempts"] > 0 and result["accepted"] == 0 and not result["secret_in_reach"], result
        assert execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(), "6*7") == "42"


def test_a_kernel_starts_with_an_allow_listed_environment(sifu_stack, students):
    """No SIFU_*, EDX_*, RDS_* or JUPYTER_* variable reaches a student's kernel (issue 13, item 2)."""
    from sifu.launch import KERNEL_NAMES

    with students_kernel(sifu_stack, students["alice"], "alice", FILE) as (alice, kernel):
        names = json.loads(execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(),
                                   "import json, os; json.dumps(sorted(os.environ))").strip("'"))
        assert set(names) <= {*KERNEL_NAMES, "JPY_SESSION_NAME", "JPY_PARENT_PID", "PYDEVD_USE_FRAME_EVAL", "MPLBACKEND",
                              "CLICOLOR", "FORCE_COLOR", "PAGER", "GIT_PAGER", "TERM", "CLICOLOR_FORCE"}, names
        assert "JPY_SESSION_NAME" in names
        assert execute(sifu_stack.jupyter.url, kernel, alice.cookie_header(), "6*7") == "42"
