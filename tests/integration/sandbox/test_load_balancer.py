"""The load-balancer stand-in (sandbox/load_balancer.py): real haproxy in a namespace, two real targets in two
more, and a client namespace that resolves the environment's CNAME through its own hosts file.

Names and addresses come from SIFU_TESTBED_PREFIX / SIFU_TESTBED_SUBNET (tests/support/lb_bed.py).
Health checks run at EB's lowest interval (5 s) with thresholds of 2; the waits below poll for the outcome
and only bound how long a broken load balancer can keep a test running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from deployer import REPO_ROOT
from sandbox.client import ClientNamespace
from sandbox.load_balancer import LoadBalancer, target_id
from sandbox.tls import SandboxCA
from tests.support import lb_bed

pytestmark = pytest.mark.integration

CNAME = "sifu-lb-test.us-east-1.elasticbeanstalk.com"
PORT = 8080
STICKY_LISTENER = 8081
LB = lb_bed.address(10)
TARGETS = {"one": lb_bed.address(1), "two": lb_bed.address(2)}


def settings(targets_port: int = PORT, idle: int = 60) -> list[dict]:
    """Option settings the way our deploy writes them: port 80 and 443 to `web`, a service port to `sticky`."""
    def opt(namespace, name, value):
        return {"Namespace": namespace, "OptionName": name, "Value": str(value)}

    process = "aws:elasticbeanstalk:environment:process:"
    out = [
        opt("aws:elbv2:listener:default", "DefaultProcess", "web"),
        opt(f"aws:elbv2:listener:{STICKY_LISTENER}", "DefaultProcess", "sticky"),
        opt(f"aws:elbv2:listener:{STICKY_LISTENER}", "Protocol", "HTTP"),
        opt("aws:elbv2:listener:443", "Protocol", "HTTPS"),
        opt("aws:elbv2:listener:443", "DefaultProcess", "sticky"),
        opt("aws:elbv2:listener:443", "SSLCertificateArns", "arn:aws:acm:us-east-1:123456789012:certificate/x"),
        opt("aws:elbv2:listener:443", "SSLPolicy", "ELBSecurityPolicy-TLS13-1-2-2021-06"),
        opt("aws:elbv2:loadbalancer", "IdleTimeout", idle),
    ]
    for name, sticky in (("web", False), ("sticky", True)):
        out += [opt(process + name, "Port", targets_port), opt(process + name, "HealthCheckPath", "/health"),
                opt(process + name, "HealthCheckInterval", 5), opt(process + name, "HealthCheckTimeout", 2),
                opt(process + name, "HealthyThresholdCount", 2), opt(process + name, "UnhealthyThresholdCount", 2),
                opt(process + name, "MatcherHTTPCode", "200"), opt(process + name, "StickinessEnabled", str(sticky).lower()),
                opt(process + name, "StickinessLBCookieDuration", 3600)]
    return out


class Target:
    def __init__(self, name: str, namespace: str, address: str, state: Path):
        self.name, self.namespace, self.address, self.state = name, namespace, address, state
        state.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "tests.support.lb_target", "--address", address,
             "--port", str(PORT), "--name", name, "--state", str(state)], cwd=REPO_ROOT, start_new_session=True)

    def unhealthy(self, yes: bool) -> None:
        flag = self.state / "unhealthy"
        flag.touch() if yes else flag.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    bed = lb_bed.LbBed().up()
    targets, lb, client = [], None, None
    try:
        for name, address in TARGETS.items():
            targets.append(Target(name, bed.add_namespace(name, address), address, root / name))
        bed.add_namespace("b", LB)
        client = ClientNamespace(bed.add_namespace("cl", lb_bed.address(20)), {CNAME: LB})
        client.write_hosts()
        ca = SandboxCA(root / "ca")
        lb = LoadBalancer(root / "haproxy", f"{lb_bed.NAME_PREFIX}b", LB, CNAME, ca)
        assert lb.configure(settings(), list(TARGETS.values())), lb.rejected
        wait_until(lambda: all(state == "UP" for state in lb.server_states().values()), "both targets in service")
        yield {"lb": lb, "targets": {t.name: t for t in targets}, "client": client, "ca": ca, "root": root}
    finally:
        if lb:
            lb.stop()
        for target in targets:
            target.process.terminate()
            target.process.wait(10)
        if client:
            client.remove_hosts()
        bed.down()


def wait_until(condition, what: str, limit: float = 60.0):
    """Poll until `condition()` is true; the limit only stops a broken load balancer from hanging the run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.25)
    pytest.fail(f"never happened: {what}")


def served_by(url: str, count: int = 8, cookie: str | None = None) -> list[str]:
    """The targets that answered `count` requests, each a new client with no cookie jar (or with `cookie`)."""
    headers = {"Cookie": cookie} if cookie else {}
    return [httpx.get(url, headers=headers, timeout=10).headers["x-target"] for _ in range(count)]


def test_a_non_sticky_process_takes_turns_and_sets_no_cookie(world):
    answers = served_by(f"http://{LB}/page")
    assert set(answers) == {"one", "two"}
    assert all(a != b for a, b in zip(answers, answers[1:])), answers  # round robin: strictly alternating
    reply = httpx.get(f"http://{LB}/page", timeout=10)
    assert "AWSALB" not in reply.headers.get("set-cookie", "")
    assert reply.headers.get("x-target") in ("one", "two")


def test_the_awsalb_cookie_pins_a_client_to_one_target_on_a_sticky_process(world):
    url = f"http://{LB}:{STICKY_LISTENER}/notebook"
    first = httpx.get(url, timeout=10)
    cookies = first.headers.get_list("set-cookie")
    awsalb = next(c for c in cookies if c.startswith("AWSALB="))
    assert "Expires=" in awsalb and "Path=/" in awsalb
    assert not any(c.startswith("AWSALBCORS=") for c in cookies)  # plain HTTP: no SameSite=None; Secure cookie
    value = awsalb.split(";")[0].split("=", 1)[1]
    pinned = served_by(url, cookie=f"AWSALB={value}")
    assert set(pinned) == {first.headers["x-target"]}, pinned
    # Without the cookie the process still balances.
    assert set(served_by(url)) == {"one", "two"}


def test_an_unhealthy_target_is_taken_out_then_put_back(world):
    lb, two = world["lb"], world["targets"]["two"]
    url = f"http://{LB}/page"
    sticky = f"http://{LB}:{STICKY_LISTENER}/notebook"
    pinned_to_two = target_id(two.address, PORT)
    two.unhealthy(True)
    try:
        wait_until(lambda: {state for (_, server), state in lb.server_states().items() if server == pinned_to_two}
                   == {"DOWN"}, "target two out of service in both processes")
        assert set(served_by(url)) == {"one"}
        # A reconfiguration keeps what the health checks found: right after the reload, two is still out.
        assert lb.configure(settings(), list(TARGETS.values())), lb.rejected
        assert {state for (_, server), state in lb.server_states().items() if server == pinned_to_two} == {"DOWN"}
        assert set(served_by(url)) == {"one"}
        # A client pinned to the target that is out goes elsewhere and gets a new cookie.
        reply = httpx.get(sticky, headers={"Cookie": f"AWSALB={pinned_to_two}"}, timeout=10)
        assert reply.headers["x-target"] == "one"
        assert f"AWSALB={target_id(world['targets']['one'].address, PORT)};" in reply.headers["set-cookie"]
    finally:
        two.unhealthy(False)
    wait_until(lambda: "two" in served_by(url, 4), "target two back in service")
    assert set(served_by(url)) == {"one", "two"}
    checks = (two.state / "health-checks").read_text().splitlines()
    assert checks and set(checks) == {f"{two.address}:{PORT} ELB-HealthChecker/2.0"}, checks[-3:]


def test_with_every_target_unhealthy_the_load_balancer_fails_open(world):
    lb, targets = world["lb"], world["targets"].values()
    for target in targets:
        target.unhealthy(True)
    try:
        wait_until(lambda: set(lb.server_states().values()) == {"DOWN"}, "every target out of service")
        with httpx.Client(timeout=10) as http:
            replies = [http.get(f"http://{LB}/page") for _ in range(6)]
        assert [reply.status_code for reply in replies] == [200] * 6
        assert {reply.headers["x-target"] for reply in replies} == {"one", "two"}
    finally:
        for target in targets:
            target.unhealthy(False)
    wait_until(lambda: set(lb.server_states().values()) == {"UP"}, "every target back in service")


def test_a_configuration_haproxy_refuses_leaves_the_old_one_serving(world):
    lb = world["lb"]
    before = lb.config_file.read_text()
    assert lb.apply(before.replace("balance roundrobin", "balance no-such-algorithm")) is False
    assert lb.rejected and "haproxy.cfg.new" in lb.rejected and "ALERT" in lb.rejected
    assert lb.config_file.read_text() == before
    assert set(served_by(f"http://{LB}/page")) == {"one", "two"}


def test_a_reload_keeps_an_established_connection_and_applies_the_new_targets(world):
    lb, one, two = world["lb"], world["targets"]["one"], world["targets"]["two"]
    for target in (one, two):
        (target.state / "release").unlink(missing_ok=True)
    result: dict = {}

    def slow_request():
        with httpx.Client(timeout=60) as http:
            result["reply"] = http.get(f"http://{LB}/slow")

    thread = threading.Thread(target=slow_request)
    thread.start()
    try:
        wait_until(lambda: lb.server_states() and _in_flight(lb), "the slow request reached a target")
        assert lb.configure(settings(), [one.address]), lb.rejected  # target two deregistered
        assert set(served_by(f"http://{LB}/page")) == {"one"}
    finally:
        for target in (one, two):
            (target.state / "release").touch()
        thread.join(60)
    assert result["reply"].status_code == 200
    assert result["reply"].text in ("one", "two")
    assert lb.configure(settings(), list(TARGETS.values())), lb.rejected
    wait_until(lambda: set(served_by(f"http://{LB}/page", 4)) == {"one", "two"}, "target two registered again")


def _in_flight(lb: LoadBalancer) -> bool:
    """A request is open on a target (haproxy's `scur` for servers)."""
    from sandbox.load_balancer import _master_command

    for line in _master_command(lb.socket_path, "@1 show stat").splitlines():
        fields = line.split(",")
        if len(fields) > 4 and fields[1] not in ("FRONTEND", "BACKEND", "svname") and fields[4].isdigit() and int(fields[4]) > 0:
            return True
    return False


def test_https_from_the_client_namespace_by_cname_with_the_sandbox_ca(world):
    client, ca = world["client"], world["ca"]
    resolved = client.run(["getent", "hosts", CNAME])
    assert resolved.returncode == 0 and resolved.stdout.split()[0] == LB
    verified = client.run(["curl", "-sS", "-i", "--cacert", str(ca.ca_file), f"https://{CNAME}/notebook"])
    assert verified.returncode == 0, verified.stderr
    head = verified.stdout.replace("\r\n", "\n").split("\n\n")[0]
    assert head.splitlines()[0].split()[1] == "200"
    assert re.search(rf"(?im)^set-cookie: AWSALBCORS=[0-9.]+:{PORT}; Expires=[^;]+ GMT; Path=/; SameSite=None; Secure$", head), head
    assert re.search(r"(?im)^x-target: (one|two)$", head), head
    # Python in the namespace (httpx, as the deploy's smoke check uses) with the machine's CAs plus the sandbox's.
    script = f"import httpx; print(httpx.get('https://{CNAME}/notebook', timeout=10).headers['x-target'])"
    python = client.run([sys.executable, "-c", script], env={**os.environ, **client.trust_env(ca.trust_bundle())})
    assert python.returncode == 0, python.stderr
    assert python.stdout.strip() in ("one", "two")
    # Without the sandbox CA the certificate is not trusted: the TLS is real.
    untrusted = client.run(["curl", "-sS", f"https://{CNAME}/notebook"])
    assert untrusted.returncode == 60, (untrusted.returncode, untrusted.stderr)


def test_our_deploys_option_settings_make_a_configuration_haproxy_accepts(world, tmp_path):
    """What `inv deploy` sets (rendered from .ebextensions/option-settings.yml.j2, with a certificate), checked by
    haproxy itself."""
    import yaml

    from deployer import config, render
    from sandbox.load_balancer import haproxy_config, load_balancer_spec

    overrides = tmp_path / "overrides.yml"
    overrides.write_text(yaml.safe_dump({"eb": {"certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/x"},
                                         "web": {"https": True}}))
    settings = config.load(environ={}, overrides_file=overrides, answers_file=tmp_path / "a.yml").settings
    options = render.option_settings(render.render_all(settings, validate=False))
    lb = world["lb"]
    candidate = tmp_path / "ours.cfg"
    candidate.write_text(haproxy_config(load_balancer_spec(options), list(TARGETS.values()), bind=LB,
                                        certificate=lb.certificate.bundle, state_file=lb.state_file))
    checked = lb.check(candidate)
    assert checked.returncode == 0, checked.stderr
