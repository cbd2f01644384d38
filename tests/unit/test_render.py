"""Rendering: strict templates, deterministic output, one port setting drives every file, no secrets."""

import io
import json
import zipfile

import pytest
import yaml

from deployer import bundle, config, render

SECRET = "client-Secret-Value-9f8e7d"
DB_PASSWORD = "db-Password-Value-1a2b3c"


@pytest.fixture
def settings(tmp_path):
    overrides = tmp_path / "overrides.yml"
    overrides.write_text(yaml.safe_dump({
        "edx": {"hostname": "lms.example.org", "studio_hostname": "studio.example.org", "oauth2_client_id": "sifu",
                "oauth2_client_secret": SECRET, "oauth2_redirect_uri": "https://lms.example.org/cb"},
        "rds": {"mode": "external", "host": "db.example.org", "password": DB_PASSWORD},
        "eb": {"key_name": "ops"},
    }))
    return config.load(environ={}, overrides_file=overrides, answers_file=tmp_path / "a.yml").settings


def with_changes(settings, **sections):
    data = settings.model_dump()
    for section, values in sections.items():
        data[section].update(values)
    return config.Settings.model_validate(data)


def test_options_carry_ports_listeners_processes_and_secret_references(settings):
    tree = render.render_all(settings, validate=False)
    options = yaml.safe_load(tree.files["eb/option-settings.yml"].content)["option_settings"]
    assert options["aws:elbv2:listener:3334"]["DefaultProcess"] == "sifu"
    assert options["aws:elbv2:listener:3335"]["DefaultProcess"] == "jupyter"
    assert options["aws:elasticbeanstalk:environment:process:jupyter"]["StickinessEnabled"] is True
    assert options["aws:elasticbeanstalk:environment:process:sifu"]["HealthCheckPath"] == "/health"
    assert options["aws:autoscaling:launchconfiguration"]["EC2KeyName"] == "ops"
    secrets = options["aws:elasticbeanstalk:application:environmentsecrets"]
    assert set(secrets) == {"SIFU_SECRET_KEY", "SIFU_SERVICE_TOKEN", "EDX_OAUTH2_CLIENT_SECRET", "RDS_PASSWORD"}
    assert all(arn.startswith("arn:aws:ssm:us-east-1:") for arn in secrets.values())
    env = options["aws:elasticbeanstalk:application:environment"]
    assert env["SIFU_FRAME_ANCESTORS"].split() == [
        "https://lms.example.org", "https://studio.example.org",
        "http://sifu-notebooks-sifu-notebooks-env.us-east-1.elasticbeanstalk.com:3334"]
    assert options["aws:elbv2:listener:3334"]["Protocol"] == "HTTP" and "aws:elbv2:listener:443" not in options
    assert options["aws:autoscaling:launchconfiguration"]["DisableIMDSv1"] is True
    assert options["aws:elasticbeanstalk:command"]["DeploymentPolicy"] == "RollingWithAdditionalBatch"
    assert options["aws:autoscaling:updatepolicy:rollingupdate"]["RollingUpdateType"] == "Immutable"
    dockerrun = json.loads(tree.files["bundle/Dockerrun.aws.json"].content)
    assert [p["ContainerPort"] for p in dockerrun["Ports"]] == [3334, 3335]


CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d"


def test_a_certificate_makes_every_service_listener_https_with_a_current_policy(settings):
    """Issue 11 item 4 (ALB-LISTENER-PORT, ALB-SSL-POLICY-DEFAULT): 3334/3335 too, not only 443."""
    tls = with_changes(settings, eb={"certificate_arn": CERT}, web={"https": True})
    options = yaml.safe_load(render.render_all(tls, validate=False).files["eb/option-settings.yml"].content)[
        "option_settings"]
    for port in (3334, 3335, 443):
        listener = options[f"aws:elbv2:listener:{port}"]
        assert (listener["Protocol"], listener["SSLCertificateArns"], listener["SSLPolicy"]) == (
            "HTTPS", CERT, "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09")
    assert options["aws:elasticbeanstalk:application:environment"]["SIFU_JUPYTER_URL"].startswith("https://")


def test_urls_name_the_cname_eb_reported_and_properties_stay_within_ebs_limits(settings):
    """Issue 11 item 3 (EB-CNAME-SUFFIX) and EB-ENV-PROPS-LIMITS."""
    facts = render.Facts(cname="sifu-notebooks-env.eba-x7k2m9pq.us-east-1.elasticbeanstalk.com")
    env = render.container_environment(with_changes(settings, sifu={"staff_usernames": ["ann", "bob"]}), facts)
    assert env["SIFU_JUPYTER_URL"] == "http://sifu-notebooks-env.eba-x7k2m9pq.us-east-1.elasticbeanstalk.com:3335"
    assert env["SIFU_FRAME_ANCESTORS"].endswith(" http://sifu-notebooks-env.eba-x7k2m9pq.us-east-1.elasticbeanstalk.com:3334")
    assert env["SIFU_STAFF_USERNAMES"] == "ann bob"  # EB refuses commas
    many = [f"https://course-{i}.example.org" for i in range(10)]
    with pytest.raises(render.RenderError, match=r"SIFU_FRAME_ANCESTORS \(from web.frame_ancestors\) is \d+ characters"):
        render.container_environment(with_changes(settings, web={"frame_ancestors": many}), facts)


def test_no_secret_in_any_rendered_file_or_the_bundle(settings):
    tree = render.render_all(settings, validate=False)
    for f in tree.files.values():
        assert SECRET not in f.content and DB_PASSWORD not in f.content, f.path
    data = bundle.build(tree).data
    assert SECRET.encode() not in data and DB_PASSWORD.encode() not in data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            content = archive.read(name)
            assert SECRET.encode() not in content and DB_PASSWORD.encode() not in content


def test_bundle_is_byte_identical_for_the_same_config(settings):
    first = bundle.build(render.render_all(settings, validate=False))
    second = bundle.build(render.render_all(settings, validate=False))
    assert first.data == second.data
    assert first.version_label == second.version_label
    with zipfile.ZipFile(io.BytesIO(first.data)) as archive:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        assert not any(name.startswith("image/") for name in archive.namelist())
    assert modes[".platform/hooks/postdeploy/10-converge.sh"] == 0o755
    assert modes["Dockerrun.aws.json"] == 0o644


@pytest.mark.parametrize("service, new_port", [("sifu", 4334), ("jupyter", 4335)])
def test_one_port_setting_changes_every_file_that_mentions_it_and_nothing_else(settings, service, new_port):
    old_port = getattr(settings.ports, service)
    before = render.render_all(settings, validate=False).files
    after = render.render_all(with_changes(settings, ports={service: new_port}), validate=False).files
    mentioned = {path for path, f in before.items() if str(old_port) in f.content}
    changed = {path for path in before if before[path].content != after[path].content}
    assert mentioned, "the port should appear in some files"
    assert changed == mentioned
    for path in changed:
        assert str(old_port) not in after[path].content, path
        assert before[path].content.replace(str(old_port), str(new_port)) == after[path].content, path
    # every consumer named in DESIGN §3 follows the setting
    expected = {"bundle/Dockerrun.aws.json", "eb/option-settings.yml",
                f"bundle/.platform/nginx/conf.d/sifu-{service}.conf"}
    expected.add("image/supervisord.conf" if service == "sifu" else "image/jupyter_server_config.py")
    assert expected <= changed


def test_strict_undefined_refuses_a_missing_variable():
    with pytest.raises(render.RenderError, match="upstreams"):
        render.render_template(".nginx/upstream.conf.j2", {})


def test_write_tree_is_atomic_with_modes_and_drops_stale_files(settings, tmp_path):
    tree = render.render_all(settings, validate=False)
    stale = tmp_path / "bundle" / "old.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("left from an earlier render")
    render.write_tree(tree, tmp_path)
    assert not stale.exists()
    hook = tmp_path / "bundle/.platform/hooks/postdeploy/10-converge.sh"
    assert hook.stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "image/supervisord.conf").read_text() == tree.files["image/supervisord.conf"].content


def test_option_settings_in_api_form(settings):
    tree = render.render_all(settings, validate=False)
    options = {(o["Namespace"], o["OptionName"]): o["Value"] for o in render.option_settings(tree)}
    assert options[("aws:ec2:instances", "InstanceTypes")] == "t3.small"
    assert options[("aws:elasticbeanstalk:environment:process:jupyter", "StickinessEnabled")] == "true"
    assert options[("aws:autoscaling:asg", "MinSize")] == "1"
    assert all(isinstance(v, str) for v in options.values())
    assert not any(path.startswith("bundle/") and "option" in path for path in tree.files)


def test_facts_from_aws_reach_the_option_settings_and_the_hook(settings):
    managed = with_changes(settings, rds={"mode": "managed", "host": ""})
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/sifu-notebooks/sifu-notebooks-env/RDS_PASSWORD"
    facts = render.Facts(account_id="123456789012", file_system_id="fs-0123456789abcdef0", offline=False,
                         instance_security_group="sg-0aa11bb22cc33dd44", secret_arns=(("RDS_PASSWORD", arn),),
                         rds_endpoint="sifu-db.abc123.us-east-1.rds.amazonaws.com")
    tree = render.render_all(managed, facts, validate=False)
    options = yaml.safe_load(tree.files["eb/option-settings.yml"].content)["option_settings"]
    assert options["aws:autoscaling:launchconfiguration"]["SecurityGroups"] == "sg-0aa11bb22cc33dd44"
    secrets = options["aws:elasticbeanstalk:application:environmentsecrets"]
    assert secrets["RDS_PASSWORD"] == arn
    assert secrets["SIFU_SECRET_KEY"] == ("arn:aws:ssm:us-east-1:123456789012:parameter"
                                          "/sifu-notebooks/sifu-notebooks-env/SIFU_SECRET_KEY")
    env = options["aws:elasticbeanstalk:application:environment"]
    assert env["RDS_HOSTNAME"] == "sifu-db.abc123.us-east-1.rds.amazonaws.com"
    assert env["SIFU_VOLUME_ID"] == "fs-0123456789abcdef0"
    assert "fs-0123456789abcdef0" in tree.files[f"bundle/.platform/hooks/postdeploy/{render.HOOK_NAME}"].content
    # Offline (no facts): no security group option, and a managed database has no hostname yet.
    offline = yaml.safe_load(render.render_all(managed, validate=False).files["eb/option-settings.yml"].content)
    assert "SecurityGroups" not in offline["option_settings"]["aws:autoscaling:launchconfiguration"]
    assert "RDS_HOSTNAME" not in offline["option_settings"]["aws:elasticbeanstalk:application:environment"]
