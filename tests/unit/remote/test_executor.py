"""Executor logic that needs no host: SSH settings to Fabric arguments, and reading the script's report."""

import pytest

from deployer.config import load
from deployer.remote import executor


def ssh_settings(**env):
    return load(environ={f"DEPLOY__SSH__{k.upper()}": v for k, v in env.items()}, overrides_file=None).settings.ssh


def test_key_user_port_and_timeout():
    kwargs = executor.connection_kwargs(ssh_settings(user="ec2-user", key_file="/keys/id_ed25519", port="2222", connect_timeout="7"))
    assert kwargs == {"user": "ec2-user", "port": 2222, "connect_timeout": 7,
                      "connect_kwargs": {"key_filename": "/keys/id_ed25519", "look_for_keys": False, "allow_agent": False}}


def test_no_key_uses_agent_and_default_keys():
    assert executor.connection_kwargs(ssh_settings())["connect_kwargs"] == {}


def test_bastion_gateway():
    gateway = executor.connection_kwargs(ssh_settings(gateway="jump@bastion.example.org:2200", key_file="/k"))["gateway"]
    assert (gateway.user, gateway.host, gateway.port) == ("jump", "bastion.example.org", 2200)
    assert gateway.connect_kwargs["key_filename"] == ["/k"]
    default_user = executor.connection_kwargs(ssh_settings(gateway="bastion.example.org", user="ec2-user"))["gateway"]
    assert (default_user.user, default_user.port) == ("ec2-user", 22)


def test_proxy_command_wins_over_gateway():
    command = "aws ssm start-session --target %h --document-name AWS-StartSSHSession --parameters portNumber=%p"
    kwargs = executor.connection_kwargs(ssh_settings(proxy_command=command, gateway="bastion.example.org"))
    assert kwargs["gateway"] == command


def test_parse_report_success_and_changes():
    out = ("sifu-converge\tmount\tchanged\tmounted fs-1 at /mnt/efs\n"
           "noise from a step\n"
           "sifu-converge\tnginx\tok\tfiles unchanged; not reloaded\n"
           "sifu-converge\tfinished\tok\tconverge finished\n")
    result = executor.parse_report("h1", out, "", 0)
    assert result.ok and result.status == "changed" and result.changed == ["mount"]


def test_parse_report_failed_step_says_why():
    out = "sifu-converge\tnginx\tfailed\tnginx -t rejected the new files; ... | nginx: [emerg] unknown directive\n"
    result = executor.parse_report("h1", out, "converge: nginx: ...", 1)
    assert result.status == "failed"
    assert result.error == "nginx: nginx -t rejected the new files; ... | nginx: [emerg] unknown directive"


def test_parse_report_crash_without_report_keeps_the_output():
    result = executor.parse_report("h1", "", "sudo: a password is required\n", 1)
    assert result.error == "exit 1: sudo: a password is required"


@pytest.mark.parametrize("target, expected", [
    ("10.0.0.5", ("10.0.0.5", "ec2-user", 22)),
    ("root@10.0.0.5", ("10.0.0.5", "root", 22)),
    ("10.0.0.5:2222", ("10.0.0.5", "ec2-user", 2222)),
    ("ops@bastion.example.org:2200", ("bastion.example.org", "ops", 2200)),
])
def test_a_user_or_port_in_the_host_wins_over_the_ssh_settings(target, expected):
    assert executor.split_host(target, "ec2-user", 22) == expected
