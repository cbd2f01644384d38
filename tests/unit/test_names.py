"""AWS resource names: one scheme, from project.name and eb.environment (and the settings that name things)."""

from pathlib import Path

from deployer import names, render
from deployer.config import load


def settings(**environ: str):
    return load(environ=environ, answers_file=Path("/nonexistent")).settings


def test_two_environments_of_one_project_share_no_resource_name():
    a, b = settings(DEPLOY__EB__ENVIRONMENT="sifu-staging"), settings(DEPLOY__EB__ENVIRONMENT="sifu-production")
    for build in (names.efs_creation_token, names.instances_security_group, names.efs_security_group,
                  names.database_identifier):
        assert build(a) != build(b) and build(a).startswith(f"{a.project.name}-sifu-staging-")
    assert names.tags(a) == {"project": a.project.name, "sifu:environment": "sifu-staging"}
    assert names.bundle_key(a, "v1") == f"{a.eb.application}/v1.zip"


def test_secret_parameters_follow_the_scheme():
    s = settings()
    for variable, name in render.secret_parameter_names(s).items():
        assert name == names.secret_parameter(s, variable)
