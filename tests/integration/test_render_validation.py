"""Validation of rendered files with the real tools: nginx -t, bash -n, shellcheck, cfn-lint."""

import pytest
import yaml

from deployer import config, render

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path):
    overrides = tmp_path / "overrides.yml"
    overrides.write_text(yaml.safe_dump({"edx": {"hostname": "lms.example.org"}, "eb": {"key_name": "ops"}}))
    return config.load(environ={}, overrides_file=overrides, answers_file=tmp_path / "a.yml").settings


@pytest.fixture(autouse=True)
def fresh_validation_cache(monkeypatch, tmp_path):
    # run the tools for real, not from an earlier pass
    monkeypatch.setattr(render.validators, "VALIDATION_CACHE", tmp_path / "validated")


def test_every_file_renders_and_validates(settings):
    tree = render.render_all(settings)
    assert set(tree.files) == {
        "image/supervisord.conf", "image/jupyter_server_config.py", "bundle/Dockerrun.aws.json",
        "eb/option-settings.yml",
        "bundle/.platform/nginx/conf.d/sifu-sifu.conf", "bundle/.platform/nginx/conf.d/sifu-jupyter.conf",
        "bundle/.platform/nginx/conf.d/sifu-upstream.conf",
        *(f"bundle/.platform/{phase}/prebuild/{hook}" for phase in ("hooks", "confighooks")
          for hook in ("01-efs-utils.sh", "02-nginx-servers.sh", "05-block-imds.sh")),
        "bundle/.platform/hooks/postdeploy/10-converge.sh", "bundle/.platform/confighooks/postdeploy/10-converge.sh",
    }
    assert any("nginx -t passed" in v for v in tree.validations), tree.validations
    assert any("shellcheck passed" in v for v in tree.validations), tree.validations
    assert tree.files["bundle/.platform/hooks/postdeploy/10-converge.sh"].mode == 0o755


def test_nginx_check_reports_the_failing_line(settings):
    vhost = render.render_template(".nginx/vhost.conf.j2", render.vhost_context(settings, "sifu"))
    broken = vhost.replace("proxy_http_version 1.1;", "proxy_http_version 1.1")
    upstream = render.render_template(".nginx/upstream.conf.j2", render.upstream_context(settings, "127.0.0.1"))
    with pytest.raises(render.RenderError, match=r"nginx -t rejected(.|\n)*proxy_http_version(.|\n)*sifu.conf:\d+"):
        render.check_nginx({"sifu.conf": broken}, upstream)


def test_broken_hook_fails_shellcheck():
    bad = render.Rendered("bundle/hook.sh", "#!/bin/bash\nrm -rf $dir/*\n", "shell", 0o755)
    with pytest.raises(render.RenderError, match="shellcheck"):
        render.check_shell([bad])


def test_bad_resource_fails_cfn_lint():
    bad = render.Rendered("bundle/.ebextensions/01-resources.config",
                          "Resources:\n  X:\n    Type: AWS::EC2::SecurityGroupIngress\n    Properties:\n      IpProtocol: tcp\n      FromPort: nope\n",
                          "cloudformation")
    with pytest.raises(render.RenderError, match="cfn-lint"):
        render.check_cloudformation([bad])
