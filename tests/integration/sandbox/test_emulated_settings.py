"""The load balancer reads what the emulated Elastic Beanstalk reports: DescribeConfigurationSettings (defaults
merged with what the deploy set) makes the same listeners and processes as the option settings our deploy sends."""

from __future__ import annotations

import pytest
import yaml

from deployer import config, render
from sandbox.load_balancer import load_balancer_spec
from sandbox.server import MotoServer

pytestmark = pytest.mark.integration


def test_described_settings_give_the_load_balancer_our_deploys_listeners_and_processes(tmp_path):
    overrides = tmp_path / "overrides.yml"
    overrides.write_text(yaml.safe_dump({"eb": {"certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/x"},
                                         "web": {"https": True}}))
    settings = config.load(environ={}, overrides_file=overrides, answers_file=tmp_path / "a.yml").settings
    ours = [o for o in render.option_settings(render.render_all(settings, validate=False))
            if o["Namespace"].startswith(("aws:elbv2:", "aws:elasticbeanstalk:environment:process:"))]
    with MotoServer() as aws:
        eb = aws.client("elasticbeanstalk")
        eb.create_application(ApplicationName="app")
        stack = next(s for s in eb.list_available_solution_stacks()["SolutionStacks"] if "Docker" in s)
        eb.create_environment(ApplicationName="app", EnvironmentName="sifu-env", SolutionStackName=stack,
                              OptionSettings=ours)
        described = eb.describe_configuration_settings(ApplicationName="app", EnvironmentName="sifu-env")[
            "ConfigurationSettings"][0]["OptionSettings"]
    spec = load_balancer_spec(described)
    assert spec == load_balancer_spec(ours)
    assert {listener.port for listener in spec.listeners} >= {80, 443} and set(spec.processes) == {"sifu", "jupyter"}
