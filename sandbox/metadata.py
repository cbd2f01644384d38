"""The instance metadata service stand-in: 169.254.169.254:80 as one instance host sees it (IMDSv2 only).

On EC2 the service is off the instance, one link-local hop away, so a container's request to it is forwarded by
the instance (through Docker's user chain, DOCKER-USER-CHAIN) while the instance's own request is not. The
sandbox models that: the service listens in a small namespace of its own linked only to its instance host
(`sandbox.network.Bridge.add_private_link`), served by a thread of the sandbox's process (`MetadataService`).

What it answers (EC2-IMDSV2-TOKEN, EB-DISABLE-IMDSV1): `PUT /latest/api/token` with
`X-aws-ec2-metadata-token-ttl-seconds` (1 to 21600) gives a session token; every GET needs that token in
`X-aws-ec2-metadata-token`, else 401 (IMDSv1 is off). Paths: `meta-data/instance-id`, `local-ipv4`,
`placement/region`, `placement/availability-zone`, `iam/info`, `iam/security-credentials/` (the role's name) and
`iam/security-credentials/ROLE` (temporary credentials from the `credentials` callback, e.g. STS AssumeRole on
the moto server, which accepts them), `dynamic/instance-identity/document`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox import network

ADDRESS = "169.254.169.254"
PORT = 80
MAX_TTL = 21600
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"

Credentials = Callable[[], dict[str, Any]]


@dataclass
class Identity:
    """What the metadata service says about its instance."""

    instance_id: str
    region: str
    local_ipv4: str
    account_id: str = "123456789012"
    role_name: str | None = None
    instance_profile_arn: str | None = None
    credentials: Credentials | None = field(default=None, repr=False)


@dataclass
class Answer:
    status: int
    body: str
    content_type: str = "text/plain"


class Tokens:
    """Session tokens and when each expires (monotonic clock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._expiry[token] = self.clock() + ttl
        return token

    def valid(self, token: str | None) -> bool:
        with self._lock:
            return bool(token) and self._expiry.get(token, 0.0) > self.clock()


def answer(identity: Identity, tokens: Tokens, method: str, path: str, headers: dict[str, str]) -> Answer:
    """The response to one request (pure but for the token store and the credentials callback)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if method == "PUT":
        if path != "/latest/api/token":
            return Answer(403, "Forbidden")
        ttl = lowered.get(TTL_HEADER.lower(), "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TTL:
            return Answer(400, "Bad Request")
        return Answer(200, tokens.issue(int(ttl)))
    if method != "GET":
        return Answer(405, "Method Not Allowed")
    if not tokens.valid(lowered.get(TOKEN_HEADER.lower())):
        return Answer(401, "Unauthorized")  # IMDSv1 is off: no token, no answer
    value = _lookup(identity, path)
    if value is None:
        return Answer(404, "Not Found")
    if isinstance(value, dict):
        return Answer(200, json.dumps(value, indent=2), "application/json")
    return Answer(200, value)


def _lookup(identity: Identity, path: str) -> str | dict | None:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = "/latest/meta-data/"
    simple = {
        meta + "instance-id": identity.instance_id,
        meta + "local-ipv4": identity.local_ipv4,
        meta + "placement/region": identity.region,
        meta + "placement/availability-zone": identity.region + "a",
        "/latest/dynamic/instance-identity/document": {
            "accountId": identity.account_id, "instanceId": identity.instance_id, "region": identity.region,
            "availabilityZone": identity.region + "a", "privateIp": identity.local_ipv4},
    }
    if path in simple:
        return simple[path]
    if not identity.role_name:
        return None
    if path == meta + "iam/info":
        return {"Code": "Success", "LastUpdated": now, "InstanceProfileArn": identity.instance_profile_arn or "",
                "InstanceProfileId": "AIPA" + identity.instance_id[2:].upper()}
    if path in (meta + "iam/security-credentials", meta + "iam/security-credentials/"):
        return identity.role_name
    if path == meta + f"iam/security-credentials/{identity.role_name}" and identity.credentials:
        given = identity.credentials()
        expiration = given["Expiration"]
        if isinstance(expiration, datetime):
            expiration = expiration.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"Code": "Success", "LastUpdated": now, "Type": "AWS-HMAC", "AccessKeyId": given["AccessKeyId"],
                "SecretAccessKey": given["SecretAccessKey"], "Token": given.get("SessionToken", given.get("Token", "")),
                "Expiration": expiration}
    return None


def assume_role_credentials(endpoint: str, role_arn: str, region: str, session_name: str) -> Credentials:
    """A credentials callback: STS AssumeRole on the emulated AWS for the instance role (moto accepts the result)."""
    import boto3

    client = boto3.client("sts", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                          aws_secret_access_key="testing")

    def credentials() -> dict[str, Any]:
        return client.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]

    return credentials


class MetadataService:
    """The stand-in serving one instance, listening at 169.254.169.254:80 inside `namespace`."""

    def __init__(self, namespace: str, identity: Identity):
        self.namespace, self.identity = namespace, identity
        self.tokens = Tokens()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> MetadataService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                result = answer(service.identity, service.tokens, self.command, self.path, dict(self.headers))
                body = result.body.encode()
                self.send_response(result.status)
                self.send_header("Content-Type", result.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = _reply

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((ADDRESS, PORT), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = network.listening_socket(self.namespace, ADDRESS, PORT)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name=f"imds-{self.namespace}", daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
