"""The fleet's pure parts: what a deployment's manifest carries, option settings as EB lists them, and the
clients' hosts file (rewritten in place: running clients have it bind-mounted over /etc/hosts)."""

from __future__ import annotations

from sandbox import fleet

OPTIONS = {
    ("", "aws:elasticbeanstalk:application:environment", "SIFU_PORT"): "3334",
    ("", "aws:elasticbeanstalk:application:environmentsecrets", "SIFU_SECRET_KEY"):
        "arn:aws:ssm:us-east-1:123456789012:parameter/sifu/env/SIFU_SECRET_KEY",
    ("AWSEBAutoScalingGroup", "aws:autoscaling:asg", "MinSize"): "2",
    ("", "aws:elbv2:listener:3335", "Protocol"): "HTTPS",
}


def test_the_environment_and_its_secrets_are_told_apart():
    properties, secrets = fleet.environment_of(OPTIONS)
    assert properties == {"SIFU_PORT": "3334"}
    assert secrets == {"SIFU_SECRET_KEY": "arn:aws:ssm:us-east-1:123456789012:parameter/sifu/env/SIFU_SECRET_KEY"}


def test_option_settings_carry_a_resource_name_only_where_eb_gives_one():
    listed = fleet.option_settings(OPTIONS)
    assert {"Namespace": "aws:autoscaling:asg", "OptionName": "MinSize", "Value": "2",
            "ResourceName": "AWSEBAutoScalingGroup"} in listed
    assert {"Namespace": "aws:elbv2:listener:3335", "OptionName": "Protocol", "Value": "HTTPS"} in listed


def test_the_clients_hosts_file_is_rewritten_in_place(tmp_path):
    hosts = tmp_path / "client-hosts"
    fleet.write_hosts_file(hosts, {"a.us-east-1.elasticbeanstalk.com": "10.239.0.3"})
    inode = hosts.stat().st_ino
    fleet.write_hosts_file(hosts, {"b.us-east-1.elasticbeanstalk.com": "10.239.0.4"})
    assert hosts.stat().st_ino == inode  # a bind mount of the old inode sees the new names
    text = hosts.read_text()
    assert "127.0.0.1\tlocalhost" in text and "10.239.0.4\tb.us-east-1.elasticbeanstalk.com" in text
    assert "a.us-east-1" not in text
