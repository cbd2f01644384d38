"""A real image registry behind a password: Debian's docker-registry with htpasswd on 127.0.0.1.

It is the registry behind the sandbox's ECR (sandbox/ecr.py): bound to the emulated AWS
(``MotoServer.use_registry``), ECR's GetAuthorizationToken names it and hands out its password. Its one user is
``AWS``, the user every ECR token is for. 127.0.0.0/8 needs no insecure-registry flag on dockerd. Without
credentials ``/v2/`` answers 401, and a push by a client that did not log in gets the registry's error in the push
stream, as with ECR (ECR-PUSH-NEEDS-LOGIN).
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import processes

REGISTRY = "/usr/bin/docker-registry"
HTPASSWD = "/usr/bin/htpasswd"
ECR_USER = "AWS"  # ECR's tokens are always for this user


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT, as used in image references
    username: str
    password: str = field(repr=False)
    process: subprocess.Popen = field(repr=False)
    root: Path = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def tags(self, repository: str) -> list[str]:
        """Tags the registry holds for a repository (read with the credentials)."""
        request = urllib.request.Request(f"{self.url}/v2/{repository}/tags/list")
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response).get("tags") or []
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise


def start_registry(root: Path, username: str = ECR_USER, host: str = "127.0.0.1") -> Registry:
    """Start a registry whose data, config and log live in ``root``; returns once it asks for credentials.

    ``host`` is the address it listens on: 127.0.0.1, or the sandbox bridge's address so that its instances and
    client namespace reach it (dockerd then needs it as an insecure registry, as for any address outside
    127.0.0.0/8)."""
    for tool in (REGISTRY, HTPASSWD):
        if not Path(tool).exists():
            raise RuntimeError(f"{tool} is missing: apt-get install docker-registry apache2-utils "
                               "(listed in tests/system-packages.txt)")
    password = secrets.token_urlsafe(16)
    entry = subprocess.run([HTPASSWD, "-Bbn", username, password], check=True, capture_output=True, text=True).stdout
    (root / "htpasswd").write_text(entry.strip() + "\n")
    (root / "storage").mkdir(parents=True, exist_ok=True)
    port = processes.free_port(host)
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {host}:{port}\n  secret: {secrets.token_hex(16)}\n"
        f"auth:\n  htpasswd:\n    realm: sifu-sandbox-registry\n    path: {root / 'htpasswd'}\n"
    )
    log = open(root / "registry.log", "wb")
    process = subprocess.Popen([REGISTRY, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    registry = Registry(host=f"{host}:{port}", username=username, password=password, process=process, root=root)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {process.returncode}:\n{(root / 'registry.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{registry.url}/v2/", timeout=2)
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # up, and asking for credentials
                return registry
        except OSError:
            pass
        time.sleep(0.1)
    stop_registry(registry)
    raise RuntimeError(f"docker-registry did not answer on {registry.host} within 30s")


def stop_registry(registry: Registry) -> None:
    processes.stop(registry.process, timeout=15)


@contextmanager
def running_registry(prefix: str = "sifu-registry-") -> Iterator[Registry]:
    """A password-protected, empty registry on 127.0.0.1:<random port> until the block ends."""
    with tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as root:
        reg = start_registry(Path(root))
        try:
            yield reg
        finally:
            stop_registry(reg)
