"""The environment's Application Load Balancer, stood in for by HAProxy (Debian's `haproxy`) in a network namespace.

Two halves, as everywhere in the sandbox:

- pure: `load_balancer_spec(option_settings)` reads the environment's option settings (the list of
  {Namespace, OptionName, ResourceName?, Value} that DescribeConfigurationSettings shows) into listeners and
  processes, with EB's documented defaults, and refuses any value that is not one EB accepts (a value with a
  newline, quote or space never reaches the haproxy file). `haproxy_config(spec, targets, ...)` turns that plus
  the instances' addresses into an haproxy configuration.
- the executor: `LoadBalancer` starts haproxy in master-worker mode, and `configure`/`apply` reconfigure it:
  the new file is checked with `haproxy -c` first (a failing one leaves the old one serving), the servers'
  health states are carried over, and the reload (SIGUSR2 to the master) lets the old worker finish its
  established connections.

What ALB does and this models, each a row of docs/aws-behaviour.md: a listener per `aws:elbv2:listener:*`
namespace forwarding to its `DefaultProcess` (ALB-DEFAULT-LISTENER, ALB-LISTENER-PORT); a target group per
process with its health check (path, interval, timeout, thresholds, matcher; ALB-PROCESS-HEALTHCHECK,
ALB-HEALTHCHECK-DEFAULTS, ALB-HEALTHCHECK-STATES), failing open when every target is unhealthy; round robin (ALB-ROUND-ROBIN); duration-based stickiness with
`AWSALB`, and `AWSALBCORS` (`SameSite=None; Secure`) over HTTPS, expiry reset on every response
(ALB-STICKINESS, ALB-STICKY-COOKIES); TLS termination with the sandbox CA's certificate for the CNAME and the
listener's security policy's lowest TLS version (ALB-TLS-TERMINATION, ALB-SSL-POLICY-DEFAULT); the
X-Forwarded-* headers (ALB-X-FORWARDED); the idle timeout (ALB-IDLE-TIMEOUT). What it does not model is listed
in sandbox/README.md.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from sandbox.tls import HOSTNAME, IssuedCertificate, SandboxCA

HAPROXY = "/usr/sbin/haproxy"
LISTENER_NS = "aws:elbv2:listener:"
PROCESS_NS = "aws:elasticbeanstalk:environment:process:"
LOAD_BALANCER_NS = "aws:elbv2:loadbalancer"
FAIL_OPEN = "failopen-"  # prefix of the unchecked backup servers that model ALB failing open
CONNECT_TIMEOUT = 10  # ALB gives up connecting to a target after 10 s (ALB-X-FORWARDED's page, HTTP 504)


class LoadBalancerConfigError(ValueError):
    """An option setting the load balancer cannot take (EB would refuse it, or it is not modelled)."""


# --- the spec: option settings, checked, with EB's defaults ------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    port: int
    protocol: str  # HTTP or HTTPS
    default_process: str
    ssl_policy: str = ""  # HTTPS only; "" is the ELB default


@dataclass(frozen=True)
class Process:
    """One EB process: a target group on port `port` of every instance, with its health check and stickiness."""

    name: str
    port: int = 80
    protocol: str = "HTTP"
    health_check_path: str = "/"
    health_check_interval: int = 15
    health_check_timeout: int = 5
    healthy_threshold: int = 3
    unhealthy_threshold: int = 5
    matcher: tuple[int, ...] = (200,)
    sticky: bool = False
    sticky_duration: int = 86400
    deregistration_delay: int = 20


@dataclass(frozen=True)
class LoadBalancerSpec:
    listeners: tuple[Listener, ...]
    processes: Mapping[str, Process]
    idle_timeout: int = 60

    @property
    def https(self) -> bool:
        return any(listener.protocol == "HTTPS" for listener in self.listeners)


_PROCESS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# A routable path: no whitespace, quotes, backslash, '#' or '$' (haproxy's tokenizer treats them specially).
_HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~/%+=&?:@!,;*()-]{0,1023}")
_MATCHER_PART = re.compile(r"(\d{3})(?:-(\d{3}))?")
_SSL_POLICY = re.compile(r"ELBSecurityPolicy-[A-Za-z0-9-]{1,100}")
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+-]+")


def _where(namespace: str, option: str) -> str:
    return f"(Namespace: '{namespace}', OptionName: '{option}')"


def _integer(namespace: str, option: str, value: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,7}", value) or not low <= int(value) <= high:
        raise LoadBalancerConfigError(f"{_where(namespace, option)}: {value!r} is not a whole number from {low} to {high}")
    return int(value)


def _choice(namespace: str, option: str, value: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    for candidate in allowed:
        if value.lower() == candidate.lower():
            return candidate
    raise LoadBalancerConfigError(f"{_where(namespace, option)}: {value!r} is not one of {', '.join(allowed)}")


def _boolean(namespace: str, option: str, value: str) -> bool:
    return _choice(namespace, option, value, ("true", "false")) == "true"


def _matcher(namespace: str, option: str, value: str) -> tuple[int, ...]:
    """ALB's matcher: codes 200-499, a list ("200,202") or a range ("200-299")."""
    codes: set[int] = set()
    for part in value.split(","):
        found = _MATCHER_PART.fullmatch(part.strip())
        low, high = (int(found.group(1)), int(found.group(2) or found.group(1))) if found else (0, 0)
        if not found or not 200 <= low <= high <= 499:
            raise LoadBalancerConfigError(
                f"{_where(namespace, option)}: {value!r} is not HTTP codes from 200 to 499 ('200', '200,202', '200-299')")
        codes.update(range(low, high + 1))
    return tuple(sorted(codes))


def _options(option_settings: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Settings by namespace, then option name. A value is a string; None (unset) is left out."""
    out: dict[str, dict[str, str]] = {}
    for item in option_settings:
        namespace, option, value = item.get("Namespace") or "", item.get("OptionName") or "", item.get("Value")
        if value is None:
            continue
        out.setdefault(namespace, {})[option] = str(value)
    return out


def _process(name: str, options: Mapping[str, str]) -> Process:
    ns = PROCESS_NS + name  # `name` is a listener's DefaultProcess, checked there
    defaults = Process(name)
    values: dict[str, Any] = {"name": name}
    for option, value in options.items():
        if option == "Port":
            values["port"] = _integer(ns, option, value, 1, 65535)
        elif option == "Protocol":
            values["protocol"] = _choice(ns, option, value, ("HTTP", "HTTPS"))
        elif option == "HealthCheckPath":
            if not _HEALTH_PATH.fullmatch(value):
                raise LoadBalancerConfigError(f"{_where(ns, option)}: {value!r} is not a routable path")
            values["health_check_path"] = value
        elif option == "HealthCheckInterval":
            values["health_check_interval"] = _integer(ns, option, value, 5, 300)
        elif option == "HealthCheckTimeout":
            values["health_check_timeout"] = _integer(ns, option, value, 1, 60)
        elif option == "HealthyThresholdCount":
            values["healthy_threshold"] = _integer(ns, option, value, 2, 10)
        elif option == "UnhealthyThresholdCount":
            values["unhealthy_threshold"] = _integer(ns, option, value, 2, 10)
        elif option == "MatcherHTTPCode":
            values["matcher"] = _matcher(ns, option, value)
        elif option == "StickinessEnabled":
            values["sticky"] = _boolean(ns, option, value)
        elif option == "StickinessType":
            _choice(ns, option, value, ("lb_cookie",))
        elif option == "StickinessLBCookieDuration":
            values["sticky_duration"] = _integer(ns, option, value, 1, 604800)
        elif option == "DeregistrationDelay":
            values["deregistration_delay"] = _integer(ns, option, value, 0, 3600)
        else:
            raise LoadBalancerConfigError(f"{_where(ns, option)}: not an option of a process")
    process = Process(**{**defaults.__dict__, **values})
    if process.health_check_timeout >= process.health_check_interval:
        raise LoadBalancerConfigError(f"{_where(ns, 'HealthCheckTimeout')}: the timeout must be less than the interval")
    return process


def _listener(port_name: str, options: Mapping[str, str]) -> Listener | None:
    ns = LISTENER_NS + port_name
    port = 80 if port_name == "default" else _integer(ns, "(listener port)", port_name, 1, 65535)
    enabled = _boolean(ns, "ListenerEnabled", options.get("ListenerEnabled", "true"))
    protocol = _choice(ns, "Protocol", options.get("Protocol", "HTTP"), ("HTTP", "HTTPS"))
    process = options.get("DefaultProcess", "default")
    if not _PROCESS_NAME.fullmatch(process):
        raise LoadBalancerConfigError(f"{_where(ns, 'DefaultProcess')}: {process!r} is not a process name")
    if options.get("Rules"):
        raise LoadBalancerConfigError(f"{_where(ns, 'Rules')}: listener rules are not modelled by the sandbox")
    unknown = set(options) - {"ListenerEnabled", "Protocol", "DefaultProcess", "Rules", "SSLCertificateArns", "SSLPolicy"}
    if unknown:
        raise LoadBalancerConfigError(f"{_where(ns, sorted(unknown)[0])}: not an option of a listener")
    policy = options.get("SSLPolicy", "")
    if protocol == "HTTPS" and not options.get("SSLCertificateArns"):
        raise LoadBalancerConfigError(f"{_where(ns, 'SSLCertificateArns')}: an HTTPS listener requires a certificate")
    if policy and (protocol != "HTTPS" or not _SSL_POLICY.fullmatch(policy)):
        raise LoadBalancerConfigError(f"{_where(ns, 'SSLPolicy')}: {policy!r} is not a security policy of an HTTPS listener")
    return Listener(port, protocol, process, policy) if enabled else None


def load_balancer_spec(option_settings: Iterable[Mapping[str, Any]]) -> LoadBalancerSpec:
    """The listeners and processes an environment's option settings describe, with EB's defaults.

    The default listener (port 80 to process `default`) exists unless `ListenerEnabled` is false; a process
    nobody configured has EB's defaults. Raises LoadBalancerConfigError for a value EB would refuse."""
    options = _options(option_settings)
    listener_options = {ns[len(LISTENER_NS):]: opts for ns, opts in options.items() if ns.startswith(LISTENER_NS)}
    listener_options.setdefault("default", {})
    listeners = [listener for name, opts in sorted(listener_options.items()) if (listener := _listener(name, opts))]
    ports = [listener.port for listener in listeners]
    if len(ports) != len(set(ports)):
        raise LoadBalancerConfigError(f"two enabled listeners on one port: {sorted(ports)}")
    processes = {ns[len(PROCESS_NS):]: opts for ns, opts in options.items() if ns.startswith(PROCESS_NS)}
    wanted = {listener.default_process for listener in listeners}
    idle = options.get(LOAD_BALANCER_NS, {}).get("IdleTimeout", "60")
    return LoadBalancerSpec(
        listeners=tuple(sorted(listeners, key=lambda listener: listener.port)),
        processes={name: _process(name, processes.get(name, {})) for name in sorted(wanted)},
        idle_timeout=_integer(LOAD_BALANCER_NS, "IdleTimeout", idle, 1, 3600),
    )


# --- the haproxy configuration ----------------------------------------------------------------------------------


def _min_tls(policy: str) -> str:
    """The lowest TLS version a security policy accepts, from its name (ALB-SSL-POLICY-DEFAULT): the ELB default,
    ELBSecurityPolicy-2016-08, accepts TLS 1.0."""
    for marker, version in (("TLS13-1-3", "TLSv1.3"), ("TLS13-1-2", "TLSv1.2"), ("TLS-1-2", "TLSv1.2"),
                            ("TLS13-1-1", "TLSv1.1"), ("TLS-1-1", "TLSv1.1")):
        if marker in policy:
            return version
    return "TLSv1.0"


def target_id(address: str, port: int) -> str:
    """A target's name in haproxy: its address and port. It is the Host of its health checks (ALB-HEALTHCHECK-HOST)
    and the value of its AWSALB cookie, stable across reconfigurations (a client stays pinned while other targets
    come and go). ALB encrypts its cookie; here it is plain, which only matters to a client that forges one."""
    return f"{address}:{port}"


def _target(address: str) -> str:
    try:
        return str(ipaddress.IPv4Address(address))
    except ValueError:
        raise LoadBalancerConfigError(f"target {address!r} is not an IPv4 address") from None


_TEMPLATE = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                               trim_blocks=True, lstrip_blocks=True).from_string("""\
# Generated by sandbox/load_balancer.py from the environment's option settings; do not edit.
global
    log stderr format raw local0 warning
{% if state_file %}
    server-state-file {{ state_file }}
{% endif %}

defaults
    mode http
    log global
    option httplog
    option forwardfor
{% if state_file %}
    load-server-state-from-file global
{% endif %}
    timeout connect {{ connect_timeout }}s
    timeout client {{ spec.idle_timeout }}s
    timeout server {{ spec.idle_timeout }}s
    timeout tunnel {{ spec.idle_timeout }}s
    timeout http-request {{ spec.idle_timeout }}s

{% for listener in spec.listeners %}
frontend listener-{{ listener.port }}
{% if listener.protocol == "HTTPS" %}
    bind {{ bind }}:{{ listener.port }} ssl crt {{ certificate }} alpn h2,http/1.1 ssl-min-ver {{ min_tls(listener.ssl_policy) }}
    http-request set-header X-Forwarded-Proto https
{% else %}
    bind {{ bind }}:{{ listener.port }}
    http-request set-header X-Forwarded-Proto http
{% endif %}
    http-request set-header X-Forwarded-Port {{ listener.port }}
    default_backend process-{{ listener.default_process }}

{% endfor %}
{% for process in spec.processes.values() %}
backend process-{{ process.name }}
    balance roundrobin
    option httpchk
    http-check send meth GET uri {{ process.health_check_path }} ver HTTP/1.1 hdr Host %[srv_name] hdr User-Agent ELB-HealthChecker/2.0
    http-check expect rstatus ^(?:{{ process.matcher | join("|") }})$
    timeout check {{ process.health_check_timeout }}s
    default-server check inter {{ process.health_check_interval }}s fall {{ process.unhealthy_threshold }} rise {{ process.healthy_threshold }}{% if process.protocol == "HTTPS" %} ssl verify none check-ssl{% endif %}

{% if process.sticky %}
    # Duration-based stickiness: the cookie names the target; a target that is down is skipped (use-server
    # applies only to a server that is up) and the cookie is rewritten. The expiry is reset on every response.
{% for target in targets %}
    use-server {{ target_id(target, process.port) }} if { req.cook(AWSALB) -m str {{ target_id(target, process.port) }} }
    use-server {{ target_id(target, process.port) }} if !{ req.cook(AWSALB) -m found } { req.cook(AWSALBCORS) -m str {{ target_id(target, process.port) }} }
{% endfor %}
    http-response add-header Set-Cookie "AWSALB=%[srv_name,regsub(^{{ fail_open }},)]; Expires=%[date({{ process.sticky_duration }}),http_date]; Path=/"
    http-response add-header Set-Cookie "AWSALBCORS=%[srv_name,regsub(^{{ fail_open }},)]; Expires=%[date({{ process.sticky_duration }}),http_date]; Path=/; SameSite=None; Secure" if { ssl_fc }
{% endif %}
{% for target in targets %}
    server {{ target_id(target, process.port) }} {{ target_id(target, process.port) }}
{% endfor %}
    # Fail open: with every target unhealthy, ALB routes to all of them. Unchecked backups stand for them,
    # used (all, in turn) only while no checked server is up.
    option allbackups
{% for target in targets %}
    server {{ fail_open }}{{ target_id(target, process.port) }} {{ target_id(target, process.port) }} backup no-check
{% endfor %}

{% endfor %}
""")


def haproxy_config(spec: LoadBalancerSpec, targets: Sequence[str], *, bind: str,
                   certificate: Path | None = None, state_file: Path | None = None) -> str:
    """The haproxy configuration for `spec` with every instance address in `targets` registered in every process.

    `bind` is the load balancer's own address; `certificate` the PEM bundle (key, certificate, CA) the HTTPS
    listeners serve; `state_file` where the executor saves the servers' health before a reload."""
    bind = _target(bind)
    for path in (certificate, state_file):
        if path is not None and not _SAFE_PATH.fullmatch(str(path)):
            raise LoadBalancerConfigError(f"{str(path)!r} is not a plain absolute path")
    if spec.https and certificate is None:
        raise LoadBalancerConfigError("an HTTPS listener needs the certificate file")
    registered = sorted({_target(address) for address in targets})
    return _TEMPLATE.render(spec=spec, targets=registered, target_id=target_id, bind=bind, certificate=certificate,
                            state_file=state_file, connect_timeout=CONNECT_TIMEOUT, min_tls=_min_tls,
                            fail_open=FAIL_OPEN)


def valid_cname(cname: str) -> str:
    """An environment's CNAME, checked: it names the certificate and the client's hosts entry."""
    if not HOSTNAME.fullmatch(cname):
        raise LoadBalancerConfigError(f"{cname!r} is not a host name")
    return cname.lower()


# --- the executor -----------------------------------------------------------------------------------------------


def _master_command(socket_path: Path, command: str, timeout: float = 5.0) -> str:
    """One command on haproxy's master CLI (a unix socket, so reachable from the root namespace)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        sock.sendall(command.encode() + b"; quit\n")  # the master CLI keeps a connection open until `quit`
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _current_workers(show_proc: str) -> set[int]:
    """PIDs of the current (not old) workers in `show proc` output."""
    workers, section = set(), ""
    for line in show_proc.splitlines():
        if line.startswith("#"):
            section = line.strip("# ").lower()
            continue
        fields = line.split()
        if section == "workers" and len(fields) > 1 and fields[1] == "worker" and fields[0].isdigit():
            workers.add(int(fields[0]))
    return workers


class LoadBalancer:
    """haproxy serving the environment's CNAME at `address` in the existing network namespace `namespace`.

    `workdir` holds its configuration, state, certificate and log. `ca` issues the HTTPS certificate for
    `cname` the first time an HTTPS listener appears; clients trust `ca.ca_file`."""

    def __init__(self, workdir: Path, namespace: str, address: str, cname: str, ca: SandboxCA | None = None):
        self.workdir, self.namespace, self.address = workdir, namespace, _target(address)
        self.cname, self.ca = valid_cname(cname), ca
        self.config_file = workdir / "haproxy.cfg"
        self.state_file = workdir / "server-state"
        self.socket_path = workdir / "master.sock"
        self.log_file = workdir / "haproxy.log"
        self.certificate: IssuedCertificate | None = None
        self.process: subprocess.Popen | None = None
        self.rejected: str | None = None  # haproxy's words about the last configuration it refused

    # pure inputs -> file
    def render(self, option_settings: Iterable[Mapping[str, Any]], targets: Sequence[str]) -> str:
        """The configuration for these settings and targets (issues the certificate if HTTPS needs one)."""
        spec = load_balancer_spec(option_settings)
        if spec.https and self.certificate is None:
            if self.ca is None:
                raise LoadBalancerConfigError("an HTTPS listener needs the sandbox CA")
            self.certificate = self.ca.issue(self.cname)
        return haproxy_config(spec, targets, bind=self.address, state_file=self.state_file,
                              certificate=self.certificate.bundle if spec.https and self.certificate else None)

    def configure(self, option_settings: Iterable[Mapping[str, Any]], targets: Sequence[str]) -> bool:
        """Serve these settings and targets: start haproxy, or reload it. False when haproxy refused the new
        configuration (the old one keeps serving; `rejected` says why). Raises LoadBalancerConfigError, before
        touching anything, for a setting EB would refuse."""
        config = self.render(option_settings, targets)
        return self.apply(config)

    def check(self, config_file: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.namespace, HAPROXY, "-c", "-f", str(config_file)],
                              capture_output=True, text=True, timeout=30)

    def apply(self, config: str) -> bool:
        self.workdir.mkdir(parents=True, exist_ok=True)
        candidate = self.workdir / "haproxy.cfg.new"
        candidate.write_text(config)
        checked = self.check(candidate)
        if checked.returncode != 0:
            self.rejected = (checked.stderr + checked.stdout).strip() or f"haproxy -c exited {checked.returncode}"
            return False
        self.rejected = None
        if self.process is None or self.process.poll() is not None:
            os.replace(candidate, self.config_file)
            self._start()
            return True
        self._save_server_state()
        os.replace(candidate, self.config_file)
        self._reload()
        return True

    def _start(self, timeout: float = 20.0) -> None:
        if not self.state_file.exists():
            self.state_file.write_text("1\n")  # the state file's version line: no servers saved yet
        log = open(self.log_file, "ab")
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, HAPROXY, "-W", "-db", "-f", str(self.config_file),
             "-S", str(self.socket_path)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited {self.process.returncode}: {self.log_file.read_text()[-2000:]}")
            try:
                if _current_workers(_master_command(self.socket_path, "show proc")):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"haproxy did not start a worker within {timeout}s: {self.log_file.read_text()[-2000:]}")

    def _save_server_state(self) -> None:
        # A target the health checks took out stays out across the reload, as it does when ALB's settings change.
        try:
            self.state_file.write_text(_master_command(self.socket_path, "@1 show servers state"))
        except OSError:
            self.state_file.write_text("1\n")

    def _reload(self, timeout: float = 20.0) -> None:
        """SIGUSR2 to the master: it re-reads the file and starts a new worker; the old one finishes its
        established connections and exits."""
        before = _current_workers(_master_command(self.socket_path, "show proc"))
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                now = _current_workers(_master_command(self.socket_path, "show proc"))
            except OSError:
                now = set()
            if now and not now & before:
                return
            time.sleep(0.1)
        raise RuntimeError(f"haproxy did not reload within {timeout}s: {self.log_file.read_text()[-2000:]}")

    def server_states(self) -> dict[tuple[str, str], str]:
        """(backend, target) -> UP / DOWN, as the current worker's health checks see them (for status and tests)."""
        states = {}
        for line in _master_command(self.socket_path, "@1 show stat").splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[1] not in ("FRONTEND", "BACKEND", "svname") \
                    and not fields[1].startswith(FAIL_OPEN):
                states[(fields[0], fields[1])] = fields[17].split()[0]
        return states

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM to the master stops the workers too
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        self.socket_path.unlink(missing_ok=True)
