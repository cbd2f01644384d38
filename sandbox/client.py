"""A client's view of the sandbox: a network namespace whose name resolution knows the environment's CNAME.

In AWS the CNAME (`PREFIX.REGION.elasticbeanstalk.com`) resolves to the load balancer. Here `ip netns exec NAME`
bind-mounts `/etc/netns/NAME/hosts` over `/etc/hosts` for the command it runs, so writing that one file maps the
CNAME (and, if given, the RDS endpoint and the EFS DNS name) to the stand-ins' addresses for that namespace only.
This machine's own `/etc/hosts` and resolver are never touched, and nothing in product code needs a switch.

    client = ClientNamespace("sifulb-client", {cname: lb_address})   # the namespace exists already
    client.write_hosts()
    client.run(["./inv", "deploy", "--yes"], env={...})                # or Chromium, httpx, curl
    ip netns exec sifulb-client curl --cacert CA https://CNAME/        # the same, by hand
    client.remove_hosts()

The namespace has a route to the bridge only, so a command in it reaches the sandbox and nothing outside this
machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from sandbox.load_balancer import valid_cname

NETNS_ETC = Path("/etc/netns")  # where `ip netns exec` looks (iproute2's NETNS_ETC_DIR)
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,14}")


def hosts_file(names: Mapping[str, str]) -> str:
    """The hosts file: localhost, then each name -> address (names checked, sorted for a stable file)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for name, address in sorted((valid_cname(name), address) for name, address in names.items()):
        if not re.fullmatch(r"[0-9a-fA-F.:]{2,45}", address):
            raise ValueError(f"{address!r} is not an address")
        lines.append(f"{address}\t{name}")
    return "\n".join(lines) + "\n"


class ClientNamespace:
    """Commands run in network namespace `namespace` resolve `names` (host name -> address) through its hosts
    file. The namespace itself (a veth on the sandbox's bridge) is made by whoever owns the network."""

    def __init__(self, namespace: str, names: Mapping[str, str]):
        if not _NAMESPACE.fullmatch(namespace):
            raise ValueError(f"{namespace!r} is not a namespace name")
        self.namespace, self.names = namespace, dict(names)

    @property
    def hosts_path(self) -> Path:
        return NETNS_ETC / self.namespace / "hosts"

    def write_hosts(self) -> Path:
        self.hosts_path.parent.mkdir(parents=True, exist_ok=True)
        self.hosts_path.write_text(hosts_file(self.names))
        return self.hosts_path

    def add_names(self, names: Mapping[str, str]) -> None:
        """More names (an RDS endpoint, an EFS DNS name), written at once."""
        self.names.update(names)
        self.write_hosts()

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace (with its hosts file), as the same user."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def run(self, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(argv), **kwargs)

    def popen(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(argv), **kwargs)

    @staticmethod
    def trust_env(bundle: Path) -> dict[str, str]:
        """Environment variables that make Python (httpx, requests, boto3) and curl trust `bundle`
        (SandboxCA.trust_bundle()). Chromium reads NSS instead: certutil -A -d sql:$HOME/.pki/nssdb -n sandbox
        -t C,, -i CA_FILE."""
        return {name: str(bundle) for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE")}

    def remove_hosts(self) -> None:
        shutil.rmtree(NETNS_ETC / self.namespace, ignore_errors=True)
