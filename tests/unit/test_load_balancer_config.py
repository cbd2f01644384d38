"""The load balancer's pure builder (sandbox/load_balancer.py): option settings -> listeners and processes with
EB's documented defaults -> an haproxy configuration; values EB would refuse never reach the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployer import config, render
from sandbox.client import hosts_file
from sandbox.load_balancer import (LoadBalancerConfigError, Process, haproxy_config, load_balancer_spec, target_id,
                                   valid_cname)

PROCESS = "aws:elasticbeanstalk:environment:process:"
TARGETS = ["10.0.0.11", "10.0.0.12"]
CERT = Path("/srv/sandbox/ca/env.pem")


def opt(namespace: str, name: str, value) -> dict:
    return {"Namespace": namespace, "OptionName": name, "Value": value}


@pytest.fixture
def our_options(tmp_path):
    """The option settings our deploy sets, with a certificate (so HTTPS listeners), as the API takes them."""
    overrides = tmp_path / "overrides.yml"
    overrides.write_text(yaml.safe_dump({"eb": {"certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/x"},
                                         "web": {"https": True}}))
    settings = config.load(environ={}, overrides_file=overrides, answers_file=tmp_path / "a.yml").settings
    return render.option_settings(render.render_all(settings, validate=False))


def test_nothing_set_gives_ebs_default_listener_and_process():
    spec = load_balancer_spec([])
    assert [(listener.port, listener.protocol, listener.default_process) for listener in spec.listeners] == [
        (80, "HTTP", "default")]
    assert spec.processes == {"default": Process("default", port=80, protocol="HTTP", health_check_path="/",
                                                 health_check_interval=15, health_check_timeout=5, healthy_threshold=3,
                                                 unhealthy_threshold=5, matcher=(200,), sticky=False,
                                                 sticky_duration=86400, deregistration_delay=20)}
    assert spec.idle_timeout == 60


def test_our_deploys_settings_become_a_listener_per_port_and_a_backend_per_process(our_options):
    spec = load_balancer_spec(our_options)
    ports = {listener.port: listener for listener in spec.listeners}
    assert ports[80].default_process == "sifu" and ports[80].protocol == "HTTP"
    assert ports[443].protocol == "HTTPS" and ports[443].default_process == "sifu"
    assert {listener.default_process for listener in spec.listeners} == set(spec.processes) == {"sifu", "jupyter"}
    assert spec.processes["jupyter"].sticky and spec.processes["jupyter"].sticky_duration == 86400
    assert not spec.processes["sifu"].sticky
    text = haproxy_config(spec, TARGETS, bind="10.0.0.2", certificate=CERT)
    for listener in spec.listeners:
        assert f"frontend listener-{listener.port}\n" in text
        assert f"bind 10.0.0.2:{listener.port}" in text
    assert f"ssl crt {CERT} alpn h2,http/1.1 ssl-min-ver TLSv1.2" in text  # TLS13-1-2 policy
    for name, process in spec.processes.items():
        backend = text.split(f"\nbackend process-{name}\n")[1].split("\nbackend ")[0]
        assert f"uri {process.health_check_path} ver HTTP/1.1" in backend
        assert "check inter 15s fall 5 rise 3" in backend and "timeout check 5s" in backend
        for target in TARGETS:
            assert f"server {target_id(target, process.port)} {target}:{process.port}\n" in backend
        assert ("AWSALB=%[srv_name,regsub(^failopen-,)]; Expires=%[date(86400),http_date]; Path=/" in backend) \
            == process.sticky
        for target in TARGETS:  # failing open: every target, unchecked, used only while none is healthy
            assert f"server failopen-{target}:{process.port} {target}:{process.port} backup no-check\n" in backend
        assert ("SameSite=None; Secure\" if { ssl_fc }" in backend) == process.sticky


def test_health_check_settings_matcher_and_stickiness_reach_the_backend():
    spec = load_balancer_spec([
        opt("aws:elbv2:listener:default", "DefaultProcess", "app"),
        opt(PROCESS + "app", "Port", "8080"), opt(PROCESS + "app", "HealthCheckPath", "/health?full=1"),
        opt(PROCESS + "app", "HealthCheckInterval", "10"), opt(PROCESS + "app", "HealthCheckTimeout", "3"),
        opt(PROCESS + "app", "HealthyThresholdCount", "2"), opt(PROCESS + "app", "UnhealthyThresholdCount", "4"),
        opt(PROCESS + "app", "MatcherHTTPCode", "200,202,301-303"), opt(PROCESS + "app", "StickinessEnabled", "true"),
        opt(PROCESS + "app", "StickinessType", "lb_cookie"), opt(PROCESS + "app", "StickinessLBCookieDuration", "60"),
        opt("aws:elbv2:loadbalancer", "IdleTimeout", "300"),
    ])
    text = haproxy_config(spec, TARGETS, bind="10.0.0.2")
    assert "http-check send meth GET uri /health?full=1 ver HTTP/1.1 hdr Host %[srv_name]" in text
    assert "http-check expect rstatus ^(?:200|202|301|302|303)$" in text
    assert "default-server check inter 10s fall 4 rise 2" in text and "timeout check 3s" in text
    assert "Expires=%[date(60),http_date]" in text
    assert "timeout client 300s" in text and "timeout tunnel 300s" in text
    assert "server 10.0.0.11:8080 10.0.0.11:8080" in text
    assert "ssl crt" not in text


def test_a_disabled_listener_is_left_out_and_an_https_listener_needs_the_certificate_file():
    spec = load_balancer_spec([opt("aws:elbv2:listener:default", "ListenerEnabled", "false"),
                               opt("aws:elbv2:listener:443", "Protocol", "HTTPS"),
                               opt("aws:elbv2:listener:443", "SSLCertificateArns", "arn:x")])
    assert [listener.port for listener in spec.listeners] == [443]
    with pytest.raises(LoadBalancerConfigError, match="certificate file"):
        haproxy_config(spec, TARGETS, bind="10.0.0.2")
    assert "ssl-min-ver TLSv1.0" in haproxy_config(spec, TARGETS, bind="10.0.0.2", certificate=CERT)  # ELB default


HOSTILE = ["/health\n    server evil 1.2.3.4:80", '/he"alth', "/he'alth", "/health now", "/health#x", "/h$HOME",
           "/h\\x", "\r\n"]


@pytest.mark.parametrize("namespace,option", [
    (PROCESS + "default", "HealthCheckPath"), (PROCESS + "default", "Port"), (PROCESS + "default", "Protocol"),
    (PROCESS + "default", "MatcherHTTPCode"), (PROCESS + "default", "StickinessEnabled"),
    (PROCESS + "default", "StickinessType"), (PROCESS + "default", "HealthCheckInterval"),
    (PROCESS + "default", "StickinessLBCookieDuration"), ("aws:elbv2:listener:default", "DefaultProcess"),
    ("aws:elbv2:listener:default", "Protocol"), ("aws:elbv2:listener:default", "ListenerEnabled"),
    ("aws:elbv2:loadbalancer", "IdleTimeout"),
])
@pytest.mark.parametrize("value", HOSTILE)
def test_values_with_newlines_quotes_or_spaces_are_refused_before_any_file(namespace, option, value):
    with pytest.raises(LoadBalancerConfigError) as refused:
        load_balancer_spec([opt(namespace, option, value)])
    assert namespace in str(refused.value) and option in str(refused.value)


@pytest.mark.parametrize("settings", [
    [opt(PROCESS + "bad name", "Port", "80"), opt("aws:elbv2:listener:default", "DefaultProcess", "bad name")],
    [opt("aws:elbv2:listener:80 ", "Protocol", "HTTP")],
    [opt("aws:elbv2:listener:70000", "Protocol", "HTTP")],
    [opt("aws:elbv2:listener:443", "Protocol", "HTTPS")],  # no certificate
    [opt("aws:elbv2:listener:443", "Protocol", "HTTPS"), opt("aws:elbv2:listener:443", "SSLCertificateArns", "a"),
     opt("aws:elbv2:listener:443", "SSLPolicy", "ELBSecurityPolicy-2016-08 x")],
    [opt("aws:elbv2:listener:default", "Rules", "admin")],  # listener rules: not modelled, so refused
    [opt("aws:elbv2:listener:80", "Protocol", "HTTP")],  # a second listener on the default listener's port
    [opt(PROCESS + "default", "MatcherHTTPCode", "199")], [opt(PROCESS + "default", "MatcherHTTPCode", "300-200")],
    [opt(PROCESS + "default", "HealthCheckTimeout", "20")],  # not less than the interval (15)
    [opt(PROCESS + "default", "NoSuchOption", "1")],
    [opt(PROCESS + "default", "StickinessType", "app_cookie")],
])
def test_settings_eb_would_refuse_are_refused(settings):
    with pytest.raises(LoadBalancerConfigError):
        load_balancer_spec(settings)


@pytest.mark.parametrize("target", ["10.0.0.1\n    server x", "host.example", "10.0.0.1 backup", "::1"])
def test_targets_are_ipv4_addresses_only(target):
    with pytest.raises(LoadBalancerConfigError):
        haproxy_config(load_balancer_spec([]), [target], bind="10.0.0.2")


@pytest.mark.parametrize("path", [Path("/tmp/with space/c.pem"), Path('/tmp/q"uote.pem'), Path("relative.pem")])
def test_file_paths_in_the_config_must_be_plain(path):
    spec = load_balancer_spec([opt("aws:elbv2:listener:443", "Protocol", "HTTPS"),
                               opt("aws:elbv2:listener:443", "SSLCertificateArns", "arn:x")])
    with pytest.raises(LoadBalancerConfigError):
        haproxy_config(spec, TARGETS, bind="10.0.0.2", certificate=path)


def test_the_configuration_is_the_same_for_the_same_inputs_whatever_the_target_order():
    spec = load_balancer_spec([])
    assert haproxy_config(spec, TARGETS, bind="10.0.0.2") == haproxy_config(spec, TARGETS[::-1], bind="10.0.0.2")


@pytest.mark.parametrize("name", ["env.us-east-1.elasticbeanstalk.com\n10.0.0.9 evil", "a b", "-x.com", ""])
def test_cnames_and_hosts_entries_are_checked(name):
    with pytest.raises(ValueError):
        valid_cname(name)
    with pytest.raises(ValueError):
        hosts_file({name: "10.0.0.2"})


@pytest.mark.parametrize("name", ["../../etc/evil", "a b.example.com", "x.example.com\nother"])
def test_the_sandbox_ca_issues_only_for_host_names_and_addresses(name, tmp_path):
    from sandbox.tls import SandboxCA

    with pytest.raises(ValueError):
        SandboxCA(tmp_path).issue(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sandbox-ca.pem"]


def test_the_hosts_file_maps_each_name_once_after_localhost():
    text = hosts_file({"B.example.com": "10.0.0.3", "a.example.com": "10.0.0.2"})
    assert text.splitlines() == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                                 "10.0.0.2\ta.example.com", "10.0.0.3\tb.example.com"]
    with pytest.raises(ValueError):
        hosts_file({"a.example.com": "10.0.0.2 evil.example.com"})
