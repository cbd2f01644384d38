"""The one way into AWS: a session factory with standard retries and a call counter.

Every boto3 client the deployer uses comes from ``Aws.client``. A botocore ``before-call`` hook counts each
API call as *read* or *mutate* (by operation name; see ``classify``), and, when the context is read-only
(dry runs, ``inv plan``), refuses any mutating call before it is sent. The per-service modules
(sts, ecr, iam, s3, eb, efs, ec2, rds, ssm) hold small functions that take a client; in each, the
read-only "check" functions come first and the "apply" functions after them.

boto3 itself honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``), which is how tests and
``inv sandbox`` point everything at the emulated AWS; ``endpoint_url`` here is only for explicit overrides.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Operation-name prefixes that only read. Everything else counts as a mutation, so a new or unusual
# operation errs on the side of "mutate" (a dry run refuses it rather than silently changing things).
# Simulate*: IAM policy simulation evaluates policies and performs nothing (IAM-SIMULATE).
READ_PREFIXES = ("Describe", "List", "Get", "Check", "Head", "Lookup", "Search", "Validate", "BatchGet",
                 "Select", "Retrieve", "Simulate")

DEFAULT_MAX_ATTEMPTS = 8  # total, first try included


class AwsError(Exception):
    """Something AWS refused or could not do; the message says what and how to fix it."""


class MutationRefused(AwsError):
    """A mutating call was attempted in a read-only (dry-run) context."""


def classify(operation_name: str) -> str:
    """'read' or 'mutate' for an API operation name such as 'DescribeEnvironments'."""
    return "read" if operation_name.startswith(READ_PREFIXES) else "mutate"


@dataclass
class CallCounter:
    """Counts API calls (not HTTP retries) by kind and by service.operation."""

    read: int = 0
    mutate: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, service: str, operation: str) -> str:
        kind = classify(operation)
        with self._lock:
            if kind == "read":
                self.read += 1
            else:
                self.mutate += 1
            self.by_operation[f"{service}.{operation}"] += 1
        return kind

    def mutations(self) -> dict[str, int]:
        return {k: v for k, v in self.by_operation.items() if classify(k.split(".", 1)[1]) == "mutate"}

    def as_dict(self) -> dict[str, Any]:
        """For --json: {"read": n, "mutate": m, "operations": {"ecr.DescribeRepositories": 2, ...}}."""
        with self._lock:
            return {"read": self.read, "mutate": self.mutate, "operations": dict(sorted(self.by_operation.items()))}


class Aws:
    """A boto3 session for one profile, with counted, retried clients cached per (service, region)."""

    def __init__(self, profile: str | None = None, region: str | None = None, endpoint_url: str | None = None,
                 read_only: bool = False, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 counter: CallCounter | None = None,
                 on_call: Callable[[str, str, str], None] | None = None):
        import boto3
        from botocore.config import Config

        self.session = boto3.Session(profile_name=profile or None, region_name=region or None)
        self.region = region or self.session.region_name
        self.endpoint_url = endpoint_url or None
        self.read_only = read_only
        self.counter = counter or CallCounter()
        self.on_call = on_call  # (service, operation, "read"|"mutate"), e.g. to feed the runner's counters
        self._config = Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                              user_agent_extra="sifu-deployer")
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()
        # Registered on the session, so every client created from it inherits the hook.
        self.session.events.register("before-call", self._before_call)

    def _before_call(self, model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        if self.read_only and classify(model.name) == "mutate":
            raise MutationRefused(
                f"refusing {service}.{model.name}: this is a dry run (read-only), which never changes AWS")
        kind = self.counter.record(service, model.name)
        if self.on_call:
            self.on_call(service, model.name, kind)

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for ``service`` in ``region`` (default: the session's region)."""
        key = (service, region or self.region)
        with self._lock:
            if key not in self._clients:
                kwargs: dict[str, Any] = {"config": self._config}
                if key[1]:
                    kwargs["region_name"] = key[1]
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                self._clients[key] = self.session.client(service, **kwargs)
            return self._clients[key]


def sdk_errors() -> tuple[type[BaseException], ...]:
    """What an AWS call can raise that the operator should see as a plain message (for ``except``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (AwsError, ClientError, BotoCoreError)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")) or str(exc)
