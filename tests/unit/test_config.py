"""Config: layering, sources, and a corpus of bad inputs each refused with a message naming the key."""

import pytest
import yaml

from deployer import REPO_ROOT, config
from deployer.config import ConfigError, load

SECRET = "s3cr3t-Value-42"


def write_overrides(tmp_path, data):
    path = tmp_path / "overrides.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def load_with(tmp_path, overrides=None, environ=None, flags=None, env=None):
    path = write_overrides(tmp_path, overrides or {})
    return load(env=env, flags=flags, environ=environ or {}, overrides_file=path, answers_file=tmp_path / "answers.yml")


def test_defaults_load_and_every_setting_has_a_comment():
    loaded = load(environ={}, answers_file=REPO_ROOT / "does-not-exist.yml")
    assert loaded.settings.ports.sifu == 3334
    lines = config.DEFAULTS_FILE.read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.endswith(":"):
            continue
        # a setting line: the nearest non-setting line above it, within its run of settings, is a comment
        above = index - 1
        while above >= 0 and lines[above].strip() and not lines[above].strip().startswith("#") and not lines[above].strip().endswith(":"):
            above -= 1
        assert lines[above].strip().startswith("#"), f"config/defaults.yml line {index + 1} ({stripped}) has no comment"


def test_layers_in_order_and_sources_recorded(tmp_path):
    overrides = {
        "eb": {"instance_type": "t3.medium", "region": "eu-west-1"},
        "efs": {"region": "eu-west-1"},
        "environments": {"staging": {"eb": {"instance_type": "t3.large", "environment": "sifu-staging"}}},
    }
    environ = {"DEPLOY__EB__INSTANCE_TYPE": "t3.xlarge", "EDX_HOSTNAME": "lms.example.org:8000"}
    loaded = load_with(tmp_path, overrides, environ, flags={"ports.sifu": 4334}, env="staging")
    s = loaded.settings
    assert s.eb.instance_type == "t3.xlarge"
    assert s.eb.environment == "sifu-staging"
    assert s.eb.region == "eu-west-1"
    assert s.edx.hostname == "lms.example.org:8000"
    assert s.ports.sifu == 4334
    assert loaded.sources["eb.instance_type"] == "env DEPLOY__EB__INSTANCE_TYPE"
    assert loaded.sources["eb.environment"].endswith("environments.staging")
    assert loaded.sources["eb.region"].endswith("overrides.yml")
    assert loaded.sources["ports.sifu"] == "flag"
    assert loaded.sources["ports.jupyter"] == "defaults"


def test_saved_answers_sit_below_the_overrides(tmp_path):
    answers = tmp_path / "answers.yml"
    config.save_answers(None, {"eb.application": "from-answers", "eb.environment": "answered-env"}, answers)
    path = write_overrides(tmp_path, {"eb": {"application": "from-overrides"}})
    loaded = load(environ={}, overrides_file=path, answers_file=answers)
    assert loaded.settings.eb.application == "from-overrides"
    assert loaded.settings.eb.environment == "answered-env"
    assert loaded.sources["eb.environment"] == "answers (answers.yml)"


def test_env_list_values_split_on_commas(tmp_path):
    loaded = load_with(tmp_path, environ={"DEPLOY__SIFU__STAFF_USERNAMES": "alice, bob"})
    assert loaded.settings.sifu.staff_usernames == ["alice", "bob"]


def test_secret_is_redacted_in_repr_rows_and_json(tmp_path):
    loaded = load_with(tmp_path, {"edx": {"oauth2_client_secret": SECRET}, "rds": {"password": SECRET}})
    assert SECRET not in repr(loaded)
    assert SECRET not in repr(loaded.settings)
    assert SECRET not in str(loaded.rows())
    assert SECRET not in loaded.settings.model_dump_json()
    assert loaded.settings.edx.oauth2_client_secret.get_secret_value() == SECRET
    assert config.SECRET_PATHS == {"edx.oauth2_client_secret", "rds.password"}


def test_secret_is_redacted_in_error_messages(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_with(tmp_path, {"rds": {"password": SECRET + "\n"}})
    assert "rds.password" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_all_problems_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_with(tmp_path, {"ports": {"sifu": 80, "jupyter": "x"}, "edx": {"hostname": "https://lms"}})
    paths = {p.path for p in caught.value.problems}
    assert {"ports.sifu", "ports.jupyter", "edx.hostname"} <= paths


def test_unknown_environment_names_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="staging"):
        load_with(tmp_path, {"environments": {"staging": {}}}, env="prod")


def test_missing_overrides_file_from_env_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="OVERRIDES"):
        load(environ={"OVERRIDES": str(tmp_path / "nope.yml")})


def test_require_names_missing_settings(tmp_path):
    loaded = load_with(tmp_path)
    with pytest.raises(ConfigError) as caught:
        config.require(loaded, ["eb.key_name", "edx.hostname", "edx.oauth2_client_secret"], "deploy to AWS")
    assert [p.path for p in caught.value.problems] == ["eb.key_name", "edx.hostname", "edx.oauth2_client_secret"]
    assert "deploy to AWS" in str(caught.value)


HOSTILE = ["a'b", 'a"b', "a\nb", "a;b", "$(id)", "`id`", "{{ x }}", "../etc", "a\x00b", "a$b"]

# (case id, where the bad value goes, the key path the message must name, expected words)
CORPUS = [
    ("unknown top key", {"eb2": {"region": "us-east-1"}}, "eb2", "unknown setting"),
    ("unknown nested key", {"eb": {"regoin": "us-east-1"}}, "eb.regoin", "did you mean eb.region"),
    ("key in wrong section", {"eb": {"file_system_id": "fs-12345678"}}, "eb.file_system_id", "unknown setting"),
    ("section given a scalar", {"ports": 3334}, "ports", "must be a section"),
    ("port as text", {"ports": {"sifu": "abc"}}, "ports.sifu", "whole number"),
    ("port 80", {"ports": {"sifu": 80}}, "ports.sifu", "1024"),
    ("port 443", {"ports": {"jupyter": 443}}, "ports.jupyter", "1024"),
    ("privileged port", {"ports": {"sifu": 22}}, "ports.sifu", "1024"),
    ("port too big", {"ports": {"sifu": 70000}}, "ports.sifu", "65535"),
    ("ports equal", {"ports": {"sifu": 4000, "jupyter": 4000}}, "ports.jupyter", "must differ"),
    ("peer port is Jupyter's", {"ports": {"peer": 3335}}, "ports.peer", "must differ"),
    ("bool as text", {"edx": {"force_ssl": "maybe"}}, "edx.force_ssl", "true or false"),
    ("list as scalar", {"web": {"frame_ancestors": "https://a.org"}}, "web.frame_ancestors", "list"),
    ("region mismatch", {"efs": {"region": "eu-west-1"}}, "efs.region", "must equal eb.region"),
    ("bad region", {"eb": {"region": "moon-1"}}, "eb.region", "AWS region"),
    ("edx host with scheme", {"edx": {"hostname": "https://lms.example.org"}}, "edx.hostname", "without a scheme"),
    ("edx host with path", {"edx": {"hostname": "lms.example.org/courses"}}, "edx.hostname", "without a path"),
    ("edx host bad port", {"edx": {"hostname": "lms.example.org:99999"}}, "edx.hostname", "host name"),
    ("edx host underscore", {"edx": {"hostname": "lms_example.org"}}, "edx.hostname", "host name"),
    ("origin with path", {"web": {"frame_ancestors": ["https://a.org/x"]}}, "web.frame_ancestors.0", "origin"),
    ("origin without scheme", {"web": {"frame_ancestors": ["a.org"]}}, "web.frame_ancestors.0", "origin"),
    ("origin ftp", {"web": {"frame_ancestors": ["ftp://a.org"]}}, "web.frame_ancestors.0", "origin"),
    ("origin wildcard", {"web": {"frame_ancestors": ["https://*"]}}, "web.frame_ancestors.0", "host name"),
    ("efs id", {"efs": {"file_system_id": "fs-XYZ"}}, "efs.file_system_id", "EFS id"),
    ("relative mount point", {"efs": {"mount_point": "mnt/efs"}}, "efs.mount_point", "absolute path"),
    ("mount point with space", {"efs": {"mount_point": "/mnt/my efs"}}, "efs.mount_point", "absolute path"),
    ("storage kind", {"storage": {"kind": "nfs"}}, "storage.kind", "must be one of"),
    ("s3 without bucket", {"storage": {"kind": "s3"}}, "storage.s3_bucket", "required"),
    ("rds mode", {"rds": {"mode": "aurora"}}, "rds.mode", "must be one of"),
    ("rds managed without password", {"rds": {"mode": "managed"}}, "rds.password", "required"),
    ("rds external without host", {"rds": {"mode": "external", "password": "pw123456"}}, "rds.host", "required"),
    ("sifu git without url", {"sifu": {"source": "git"}}, "sifu.git_url", "required"),
    ("git url http", {"sifu": {"git_url": "http://git.example.org/sifu.git"}}, "sifu.git_url", "https"),
    ("git url ssh", {"sifu": {"git_url": "git@github.com:org/sifu.git"}}, "sifu.git_url", "https"),
    ("min above max", {"eb": {"min_instances": 3, "max_instances": 2}}, "eb.min_instances", "must not exceed"),
    ("instance type", {"eb": {"instance_type": "huge"}}, "eb.instance_type", "instance type"),
    ("environment name short", {"eb": {"environment": "ab"}}, "eb.environment", "4-40"),
    ("environment name dash end", {"eb": {"environment": "sifu-"}}, "eb.environment", "4-40"),
    ("ecr repo uppercase", {"ecr": {"repository": "Sifu"}}, "ecr.repository", "ECR repository"),
    ("redirect uri not url", {"edx": {"oauth2_redirect_uri": "not a url"}}, "edx.oauth2_redirect_uri", "URL"),
    ("staff username with slash", {"sifu": {"staff_usernames": ["a/b"]}}, "sifu.staff_usernames.0", "username"),
    ("ssh user", {"ssh": {"user": "Root User"}}, "ssh.user", "Unix user"),
    ("gateway with command", {"ssh": {"gateway": "bastion && reboot"}}, "ssh.gateway", "'&'"),
    ("idle timeout", {"eb": {"idle_timeout": 0}}, "eb.idle_timeout", "greater than or equal"),
    ("keep images", {"ecr": {"keep_images": -1}}, "ecr.keep_images", "greater than or equal"),
    ("https without certificate", {"web": {"https": True}}, "web.https", "needs eb.certificate_arn"),
    ("https without certificate, own front", {"web": {"https": True, "public_host": "notebooks.example.org"}},
     "web.https", "needs eb.certificate_arn"),
    ("certificate without https", {"eb": {"certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/a"}},
     "eb.certificate_arn", "web.https must be true"),
    ("several instances without a shared database", {"eb": {"max_instances": 2}}, "eb.max_instances",
     "a token issued by one instance is unknown to the next"),
    ("az of another region", {"efs": {"availability_zone": "eu-west-1a"}}, "efs.availability_zone", "zone of efs.region"),
    ("token file traversal", {"deployment_token": {"file": "../secrets/token"}}, "deployment_token.file", "'..'"),
    ("base image with shell", {"image": {"base_image": "python:3.11 && rm"}}, "image.base_image", "'&'"),
    ("environments not a mapping", {"environments": ["staging"]}, "environments", "must map"),
]

# Hostile strings wherever a value could reach a shell, nginx, a CSP header or a path.
HOSTILE_TARGETS = [
    "edx.hostname", "edx.studio_hostname", "efs.mount_point", "web.public_host", "ssh.proxy_command",
    "ssh.key_file", "sifu.git_ref", "eb.key_name", "project.name", "edx.oauth2_client_id",
]


def _nested(path, value):
    data = {}
    cursor = data
    *parents, leaf = path.split(".")
    for part in parents:
        cursor = cursor.setdefault(part, {})
    cursor[leaf] = value
    return data


@pytest.mark.parametrize("case, overrides, key, words", CORPUS, ids=[c[0] for c in CORPUS])
def test_bad_value_is_refused_naming_the_key(tmp_path, case, overrides, key, words):
    with pytest.raises(ConfigError) as caught:
        load_with(tmp_path, overrides)
    message = str(caught.value)
    assert any(p.path == key for p in caught.value.problems), message
    assert words in message, message
    assert "nothing was changed" in message


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
@pytest.mark.parametrize("hostile", HOSTILE, ids=[repr(h) for h in HOSTILE])
def test_hostile_strings_are_refused(tmp_path, target, hostile):
    with pytest.raises(ConfigError) as caught:
        load_with(tmp_path, _nested(target, hostile))
    assert any(p.path == target for p in caught.value.problems), str(caught.value)


@pytest.mark.parametrize("hostile", HOSTILE, ids=[repr(h) for h in HOSTILE])
def test_hostile_frame_ancestor_never_reaches_csp(tmp_path, hostile):
    with pytest.raises(ConfigError, match=r"web\.frame_ancestors\.0"):
        load_with(tmp_path, {"web": {"frame_ancestors": [f"https://a.org{hostile}"]}})


def test_hostile_value_from_environment_variable(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_with(tmp_path, environ={"EDX_HOSTNAME": "lms.org;reboot"})
    assert "env EDX_HOSTNAME" in str(caught.value)


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "overrides.yml"
    path.write_text("eb:\n  region: [unclosed\n")
    with pytest.raises(ConfigError, match=r"overrides.yml.*line"):
        load(environ={}, overrides_file=path)


def test_good_site_config_is_accepted(tmp_path):
    loaded = load_with(tmp_path, {
        "edx": {"hostname": "lms.example.org", "studio_hostname": "studio.example.org:8443",
                "oauth2_client_id": "sifu-client", "oauth2_client_secret": SECRET,
                "oauth2_redirect_uri": "https://lms.example.org/oauth2/redirect"},
        "web": {"frame_ancestors": ["https://preview.example.org"], "https": True},
        "eb": {"certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc-123", "key_name": "ops-key"},
        "sifu": {"source": "git", "git_url": "https://git.example.org/org/sifu.git", "staff_usernames": ["staff.one", "prof@x"]},
        "ssh": {"proxy_command": "aws ssm start-session --target %h --document-name AWS-StartSSHSession --parameters portNumber=%p"},
    })
    assert loaded.settings.edx.studio_hostname == "studio.example.org:8443"


@pytest.mark.parametrize("env", [None, "staging", "production"])
def test_overrides_template_is_valid_for_each_environment(tmp_path, env):
    template = REPO_ROOT / "config" / "overrides.yml.template"
    loaded = load(env=env, environ={}, overrides_file=template, answers_file=tmp_path / "a.yml")
    assert loaded.settings.edx.hostname == "lms.example.org"
