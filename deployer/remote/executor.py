"""The one executor: runs a converge command on many hosts over a Fabric Group.

ThreadingGroup by default (hosts in parallel), SerialGroup on request. A host that cannot be
reached or whose script fails does not stop the others; every host gets a row in the results.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from deployer import ui
from deployer.config import Settings
from deployer.remote import commands, hooks, usage
from deployer.templating.context import CONTAINER_NOTEBOOK_ROOT


@dataclass
class ConvergeStepResult:
    """One converge step on one host, as the script reported it (not deployer.steps.StepResult)."""

    name: str
    status: str  # ok | changed | failed
    detail: str


@dataclass
class HostResult:
    host: str
    steps: list[ConvergeStepResult] = field(default_factory=list)
    error: str = ""  # why the host failed: unreachable, or the failing step's message
    exit_code: int | None = None

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def changed(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "changed"]

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        return "changed" if self.changed else "ok"


@dataclass
class RunResult:
    hosts: list[HostResult]
    seconds: float
    parallel: bool

    @property
    def failed(self) -> list[HostResult]:
        return [h for h in self.hosts if not h.ok]

    @property
    def changed(self) -> bool:
        return any(h.changed for h in self.hosts)


def parse_report(host: str, stdout: str, stderr: str, exit_code: int) -> HostResult:
    """Turn the script's `sifu-converge<TAB>step<TAB>status<TAB>detail` lines into a HostResult."""
    result = HostResult(host, exit_code=exit_code)
    for line in stdout.splitlines():
        parts = line.split("\t", 3)
        if len(parts) == 4 and parts[0] == hooks.REPORT_PREFIX:
            result.steps.append(ConvergeStepResult(parts[1], parts[2], parts[3]))
    failed = [s for s in result.steps if s.status == "failed"]
    if failed:
        result.error = f"{failed[0].name}: {failed[0].detail}"
    elif exit_code != 0:
        tail = (stderr.strip() or stdout.strip()).splitlines()[-3:]
        result.error = f"exit {exit_code}: {' | '.join(tail) or 'no output'}"
    return result


def connection_kwargs(ssh) -> dict:
    """Fabric Connection keyword arguments from the `ssh` config section."""
    connect_kwargs: dict = {}
    if ssh.key_file:
        connect_kwargs = {"key_filename": os.path.expanduser(ssh.key_file), "look_for_keys": False, "allow_agent": False}
    kwargs = {"user": ssh.user, "port": ssh.port, "connect_timeout": ssh.connect_timeout, "connect_kwargs": connect_kwargs}
    if ssh.proxy_command:
        kwargs["gateway"] = ssh.proxy_command  # Fabric runs a string gateway as a ProxyCommand
    elif ssh.gateway:
        kwargs["gateway"] = _gateway(ssh, connect_kwargs)
    return kwargs


def split_host(target: str, user: str, port: int) -> tuple[str, str, int]:
    """(host, user, port) of ``[user@]host[:port]``, the defaults filling what it leaves out (pure)."""
    named_user, _, rest = target.rpartition("@")
    host, _, named_port = rest.partition(":")
    return host, named_user or user, int(named_port or port)


def _connection(target: str, kwargs: dict):
    """A Fabric Connection; a user or port written in ``target`` wins over the ssh settings."""
    from fabric import Connection

    host, user, port = split_host(target, kwargs["user"], kwargs["port"])
    return Connection(host, **{**kwargs, "user": user, "port": port})


def _gateway(ssh, connect_kwargs: dict):
    return _connection(ssh.gateway, {"user": ssh.user, "port": 22, "connect_timeout": ssh.connect_timeout,
                                     "connect_kwargs": dict(connect_kwargs)})


def _describe_exception(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, (ConnectionRefusedError,)) or "Unable to connect" in text or "refused" in text.lower():
        return f"unreachable: {text}"
    if "timed out" in text.lower() or isinstance(exc, TimeoutError):
        return f"unreachable (timed out): {text}"
    if "Authentication" in type(exc).__name__ or "authentication" in text.lower():
        return f"SSH login refused: {text}; check ssh.user and ssh.key_file"
    return f"{type(exc).__name__}: {text}"


def _run_group(hosts: list[str], command: str, s: Settings, serial: bool) -> list[tuple[str, object]]:
    """(host, Fabric Result or the exception it raised or None) for every host; one failing host does not stop the others."""
    from fabric import SerialGroup, ThreadingGroup
    from fabric.exceptions import GroupException

    # paramiko's transport thread logs a traceback when a handshake fails; the exception it also raises
    # becomes the host's one line in the table, so the log record only adds noise to the terminal.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    kwargs = connection_kwargs(s.ssh)
    connections = [_connection(host, kwargs) for host in hosts]
    group = (SerialGroup if serial else ThreadingGroup).from_connections(connections)
    try:
        outcome = group.run(command, hide=True, warn=True, in_stream=False)
    except GroupException as exc:
        outcome = exc.result
    finally:
        group.close()
    return [(host, outcome.get(conn)) for host, conn in zip(hosts, connections)]


def _failure(value: object) -> str:
    """Why a host has no Fabric Result, or "" when it has one."""
    if value is None:
        return "no result (not run)"
    return _describe_exception(value) if isinstance(value, BaseException) else ""


def run_on_hosts(hosts: list[str], command: str, s: Settings, serial: bool = False) -> RunResult:
    """Run command on every host at once (or one after another); never stops at the first failure."""
    started = time.monotonic()
    outcome = _run_group(hosts, command, s, serial)
    seconds = time.monotonic() - started
    results = [HostResult(host, error=failure) if (failure := _failure(value))
               else parse_report(host, value.stdout, value.stderr, value.exited) for host, value in outcome]
    return RunResult(results, seconds, not serial)


def run_raw(hosts: list[str], command: str, s: Settings) -> dict[str, tuple[int, str, str]]:
    """Run command on every host at once: {host: (exit code, stdout, stderr)}; exit -1 when unreachable."""
    return {host: (-1, "", failure) if (failure := _failure(value)) else (value.exited, value.stdout, value.stderr)
            for host, value in _run_group(hosts, command, s, serial=False)}


def student_usage(targets: dict[str, str], s: Settings) -> list[usage.InstanceUsage]:
    """sifu.usage from the app container of every instance at once ({instance: ssh host}); an instance that
    cannot be reached, or has no app container, gets its error instead of figures."""
    if not targets:
        return []
    command = commands.student_usage(s.remote.container_filter, CONTAINER_NOTEBOOK_ROOT, sudo=s.ssh.user != "root")
    outputs = run_raw(list(dict.fromkeys(targets.values())), command, s)
    return [usage.parse(instance, host, *outputs[host]) for instance, host in targets.items()]


def converge(hosts: list[str], s: Settings, facts, phases: list[str] | None = None, serial: bool = False,
             access: commands.S3Access | None = None, templates: hooks.Templates = hooks.Templates()) -> RunResult:
    """Converge hosts: the phases of the .platform hook script ("mount", "nginx"; default both)."""
    phases = list(phases or hooks.PHASES)
    unknown = [p for p in phases if p not in hooks.PHASES]
    if unknown:
        raise ValueError(f"unknown converge phase(s) {unknown}; use {list(hooks.PHASES)}")
    script = hooks.converge_script(s, facts, access, templates)
    command = commands.run_script(script, phases, sudo=s.ssh.user != "root")
    return run_on_hosts(hosts, command, s, serial)


def print_results(result: RunResult) -> None:
    """The per-host table, then one line per failed host saying why."""
    rows = []
    for h in result.hosts:
        changed = ", ".join(h.changed) or "-"
        detail = h.error or "; ".join(s.detail for s in h.steps if s.status == "changed") or "no changes"
        rows.append([h.host, h.status, changed, detail])
    mode = "parallel" if result.parallel else "serial"
    ui.table(["host", "result", "changed", "detail"], rows, title=f"converge ({mode}, {result.seconds:.2f}s)")
    if not result.failed and not result.changed:
        ui.say("no changes")
