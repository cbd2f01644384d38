"""Secrets never land in what the tools produce.

Covered here (what main has today): the app image's layers and history (`docker save` of the image the
e2e stack runs), the container's and nginx's and devlms's logs after the whole e2e session's traffic,
`inv render` (the rendered tree: EB bundle contents, nginx files, supervisord, Jupyter config) and
`inv config --json`, run with the deployment token, OAuth2 client secret, RDS password and signing key
all set. Not covered yet: `inv deploy`'s bundle zip and `inv plan --json` against moto (branch `deploy`).
"""

from __future__ import annotations

import io
import secrets
import subprocess
import sys
import tarfile

import httpx
import pytest

from deployer import REPO_ROOT

pytestmark = pytest.mark.e2e


def occurrences(blob: bytes, needles: dict[str, str]) -> list[str]:
    return [name for name, value in needles.items() if value.encode() in blob]


def test_no_secret_in_rendered_tree_or_json_output(tmp_path):
    needles = {name: f"{name.lower()}-{secrets.token_hex(12)}" for name in
               ("DEPLOYMENT_TOKEN", "EDX_OAUTH2_CLIENT_SECRET", "RDS_PASSWORD", "SIFU_SECRET_KEY")}
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path), "LANG": "C.UTF-8", **needles,
           "DEPLOY__RDS__MODE": "external", "RDS_HOSTNAME": "db.example.test", "EDX_HOSTNAME": "lms.example.test",
           "EDX_OAUTH2_CLIENT_ID": "sifu", "EDX_OAUTH2_CLIENT_REDIRECT_URI": "https://lms.example.test/xblock/callback"}
    out = tmp_path / "render"
    outputs = []
    for args in (["render", "--out", str(out)], ["config", "--json"]):
        result = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *args], env=env,
                                capture_output=True, timeout=120, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
        outputs.append(result.stdout + result.stderr)
        assert occurrences(result.stdout + result.stderr, needles) == [], args
    assert b"rds" in outputs[1], outputs[1][:500]  # the JSON really printed the settings
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files, outputs[0]
    for path in files:
        assert occurrences(path.read_bytes(), needles) == [], path


def test_no_secret_in_image_layers_history_or_logs(e2e_stack, docker_client):
    needles = {"SIFU_SECRET_KEY": e2e_stack.secret_key, "EDX_OAUTH2_CLIENT_SECRET": e2e_stack.client_secret}
    image = docker_client.images.get(e2e_stack.app.ref)
    history = repr(image.history()).encode() + repr(image.attrs).encode()
    assert occurrences(history, needles) == []
    blob = io.BytesIO(b"".join(image.save()))
    with tarfile.open(fileobj=blob) as archive:
        for member in archive.getmembers():
            if member.isfile():
                data = archive.extractfile(member).read()
                assert occurrences(data, needles) == [], member.name
                if member.name.endswith(".tar") or member.name.startswith("blobs/"):
                    try:
                        with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                            for item in layer.getmembers():
                                if item.isfile():
                                    content = layer.extractfile(item).read()
                                    assert occurrences(content, needles) == [], (member.name, item.name)
                    except tarfile.ReadError:
                        pass  # a JSON blob, scanned above
    logs = e2e_stack.logs().encode()
    assert logs, "the container logged nothing?"
    assert occurrences(logs, needles) == []
    for path in [*(e2e_stack.workdir / "nginx" / "logs").rglob("*"), e2e_stack.workdir / "devlms.log"]:
        if path.is_file():
            assert occurrences(path.read_bytes(), needles) == [], path


def test_no_live_token_in_any_log_after_a_serve_redirect(e2e_stack):
    """The iframe's serve URL carries `?Authorization=Bearer T` through nginx to Sifu (issue 13): neither nginx's
    logs nor the container's (Sifu, Jupyter) keep T, and the redirect tells the browser not to pass it on."""
    from urllib.parse import parse_qs, urlsplit

    with httpx.Client(timeout=30, follow_redirects=False) as client:
        serve_url = e2e_stack.open_course_page(client, "alice", "token-logs.ipynb")
        serve = client.get(serve_url)
    assert serve.status_code == 302 and serve.headers["referrer-policy"] == "no-referrer"
    token = parse_qs(urlsplit(serve_url).query)["Authorization"][0].removeprefix("Bearer ").strip()
    assert len(token) > 20
    needles = {"token": token}
    assert occurrences(e2e_stack.logs().encode(), needles) == []
    for path in (e2e_stack.workdir / "nginx" / "logs").rglob("*"):
        if path.is_file():
            assert occurrences(path.read_bytes(), needles) == [], path
