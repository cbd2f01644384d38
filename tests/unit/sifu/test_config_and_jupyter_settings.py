"""Settings from the environment, the Jupyter site settings, the ownership rule and the rendered config."""

from __future__ import annotations

import pytest

from sifu import config
from sifu.app import identity_cookie


def _env(tmp_path, **changes):
    env = {
        "EDX_HOSTNAME": "lms.example.org", "EDX_OAUTH2_CLIENT_ID": "id", "EDX_OAUTH2_CLIENT_SECRET": "very-secret",
        "EDX_OAUTH2_CLIENT_REDIRECT_URI": "https://lms.example.org/cb", "SIFU_NOTEBOOK_ROOT": str(tmp_path),
        "SIFU_SECRET_KEY": "k" * 40, "SIFU_JUPYTER_URL": "https://sifu.example.org:3335", "SIFU_STATE_DIR": str(tmp_path / "state"),
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def test_defaults(tmp_path):
    s = config.load(_env(tmp_path))
    assert s.edx_base_url == "https://lms.example.org"
    assert s.database_url == f"sqlite:///{tmp_path / 'state' / 'sifu.sqlite3'}"
    assert s.token_ttl == 86400 and s.volume_id == "" and s.cookie_secure is False
    assert "very-secret" not in repr(s) and "kkkk" not in repr(s)


def test_rds_variables_make_a_postgresql_url_with_the_password_escaped(tmp_path):
    s = config.load(_env(tmp_path, RDS_HOSTNAME="db.example.org", RDS_PORT="5433", RDS_DB_NAME="sifu",
                         RDS_USERNAME="sifu", RDS_PASSWORD="p@ss/word:#"))
    assert s.database_url == "postgresql+psycopg://sifu:p%40ss%2Fword%3A%23@db.example.org:5433/sifu"


def test_incomplete_rds_variables_are_named(tmp_path):
    with pytest.raises(config.SettingError, match="RDS_PASSWORD"):
        config.load(_env(tmp_path, RDS_HOSTNAME="db", RDS_DB_NAME="sifu", RDS_USERNAME="sifu"))


@pytest.mark.parametrize("name, value", [
    ("EDX_HOSTNAME", None), ("EDX_HOSTNAME", "lms.example.org/path"), ("EDX_OAUTH2_CLIENT_ID", ""),
    ("SIFU_SECRET_KEY", "short"), ("SIFU_NOTEBOOK_ROOT", "/no/such/dir"), ("SIFU_JUPYTER_URL", "javascript:alert(1)"),
    ("SIFU_STAFF_USERNAMES", "ok,bad!name"), ("SIFU_TOKEN_TTL", "5"), ("SIFU_FRAME_ANCESTORS", "https://a.example;script-src"),
    ("SIFU_VOLUME_ID", "fs-1 $(id)"), ("SIFU_COOKIE_SECURE", "perhaps"), ("SIFU_SERVICE_TOKEN", "short"),
])
def test_bad_settings_name_the_variable(tmp_path, name, value):
    with pytest.raises(config.SettingError, match=name):
        config.load(_env(tmp_path, **{name: value}))


def test_tornado_settings_set_csp_and_iframe_cookie_flags():
    from sifu.jupyter import tornado_settings

    secure = tornado_settings({"SIFU_FRAME_ANCESTORS": "https://lms.example.org https://studio.example.org", "SIFU_COOKIE_SECURE": "true"})
    assert secure["headers"]["Content-Security-Policy"] == (
        "frame-ancestors 'self' https://lms.example.org https://studio.example.org; report-uri /api/security/csp-report")
    assert secure["xsrf_cookie_kwargs"] == {"path": "/", "samesite": "None", "secure": True}
    plain = tornado_settings({})
    assert plain["headers"]["Content-Security-Policy"].startswith("frame-ancestors 'self';")
    assert plain["xsrf_cookie_kwargs"] == {"path": "/", "samesite": "Lax"}
    with pytest.raises(config.SettingError):
        tornado_settings({"SIFU_FRAME_ANCESTORS": "https://x.example\nSet-Cookie: a=b"})


def test_identity_cookie_attributes():
    assert identity_cookie("v", 60, secure=True) == "sifu_identity=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=None; Partitioned"
    assert identity_cookie("v", 60, secure=False) == "sifu_identity=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"


def test_identity_cookie_with_a_real_signed_value():
    from sifu import signing

    value = signing.sign_identity(b"k" * 40, "a.b@c+d-e_f", 2_000_000_000, "0" * 64)
    header = identity_cookie(value, 0, secure=True)
    assert header == f"sifu_identity={value}; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=None; Partitioned"
    assert header.count(";") == 6  # the value added no attribute


@pytest.mark.parametrize("value", ["", "a;b", "a b", 'a"b', "a,b", "a\\b", "a\nSet-Cookie: x=y", "é", "x" * 513, "a\x00"])
def test_identity_cookie_refuses_values_that_could_break_the_header(value):
    with pytest.raises(ValueError, match="cookie"):
        identity_cookie(value, 60, secure=True)


@pytest.mark.parametrize("max_age", [-1, 1.5, "60", True, "60; Domain=evil.example"])
def test_identity_cookie_refuses_a_max_age_that_is_not_whole_seconds(max_age):
    with pytest.raises(ValueError, match="Max-Age"):
        identity_cookie("v", max_age, secure=True)


@pytest.mark.parametrize("path, owned", [
    ("users/alice/c/f.ipynb", True), ("users/alice", True), ("/users/alice/", True), ("users/alice/../bob/f", False),
    ("users/bob/c/f.ipynb", False), ("users", False), ("", False), ("courses/c/f.ipynb", False), ("users/alice2/x", False),
    ("users/alic", False), ("users\\alice", False), ("./users/alice/x", True),
])
def test_ownership_rule(path, owned):
    from sifu.jupyter import owns

    assert owns("alice", path) is owned


def test_rendered_jupyter_config_compiles_and_names_the_sifu_classes(tmp_path):
    from deployer import config as deployer_config
    from deployer import render

    overrides = tmp_path / "o.yml"
    overrides.write_text("{}\n")
    loaded = deployer_config.load(environ={}, overrides_file=overrides, answers_file=tmp_path / "none.yml")
    text = render.render_template("jupyter_server_config.py.j2", render.jupyter_context(loaded.settings, "/notebooks", "/run/sifu-broker/broker.sock"))
    compile(text, "jupyter_server_config.py", "exec")
    for line in ('identity_provider_class = "sifu.jupyter.SifuIdentityProvider"', 'authorizer_class = "sifu.jupyter.SifuAuthorizer"',
                 'session_manager_class = "sifu.jupyter.SifuSessionManager"', 'kernel_manager_class = "sifu.jupyter.SifuKernelManager"',
                 "terminals_enabled = False", "disable_check_xsrf = False", "tornado_settings = tornado_settings(os.environ)",
                 'root_dir = "/notebooks"', "port = 3335", 'kernel_launch = "broker"',
                 'contents_manager_class = "sifu.jupyter.SifuContentsManager"',
                 'kernel_websocket_connection_class = "sifu.kernel_output.FloodBoundedKernelWebsocketConnection"',
                 "ZMQChannelsWebsocketConnection.limit_rate = True", "iopub_data_rate_limit = 1000000",
                 "iopub_msg_rate_limit = 1000"):
        assert line in text
    assert "NotebookApp" not in text


def test_the_kernel_broker_is_given_the_disk_cap_of_the_settings(tmp_path):
    from deployer import config as deployer_config
    from deployer.templating import context

    overrides = tmp_path / "o.yml"
    overrides.write_text("jupyter:\n  max_disk_mib_per_student: 300\n  max_files_per_student: 4000\n  disk_check_interval: 20\n")
    loaded = deployer_config.load(environ={}, overrides_file=overrides, answers_file=tmp_path / "none.yml")
    command = context.kernel_broker_program(loaded.settings, "/opt/venv/bin/python", "/notebooks")["command"]
    assert command.endswith("--max-disk-mib 300 --max-files 4000 --disk-check-interval 20")


def test_redirect_uri_may_be_an_xblock_handler_url(tmp_path):
    uri = "https://lms.example.org/courses/course-v1:Org+Num+Run/xblock/block-v1:Org+Num+Run+type@sifu+block@abc/handler/cb?a=1"
    assert config.load(_env(tmp_path, EDX_OAUTH2_CLIENT_REDIRECT_URI=uri)).edx_redirect_uri == uri
    for bad in ('https://lms.example.org/"x', "https://lms.example.org/a b", "ftp://lms.example.org/"):
        with pytest.raises(config.SettingError, match="EDX_OAUTH2_CLIENT_REDIRECT_URI"):
            config.load(_env(tmp_path, EDX_OAUTH2_CLIENT_REDIRECT_URI=bad))
