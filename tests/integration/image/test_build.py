"""Both Dockerfiles build for real from the local Debian base, and an unchanged build does nothing."""

from __future__ import annotations

import pytest

from deployer import image, render
from tests.integration.image.helpers import run_inv

pytestmark = pytest.mark.integration


def test_base_and_final_images_build_from_the_local_base(app_image, docker_client):
    base = docker_client.images.get(app_image.plan.base.ref)
    final = docker_client.images.get(app_image.ref)
    # Both were built in this session, from the debootstrap base: the base's layers are under the final's.
    assert set(app_image.build_seconds) == {app_image.plan.base.ref, app_image.ref}
    assert base.history()[-1]["Id"] == final.history()[-1]["Id"]
    config = final.attrs["Config"]
    # supervisord starts as root and sifu.launch drops each program to its own service user.
    assert config["User"] == "0:0"
    assert config["Entrypoint"] == ["python", "-I", "-m", "sifu.confine", "--", "dumb-init", "--"]
    # supervisord, through sifu/supervise.py (upstream's fix for its idle second before the first program)
    assert config["Cmd"] == ["python", "-I", "-m", "sifu.supervise", "--nodaemon", "--configuration",
                             "/etc/sifu/supervisord.conf"]
    assert set(config["ExposedPorts"]) == {f"{app_image.sifu_port}/tcp", f"{app_image.jupyter_port}/tcp"}
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Labels"]["sifu.build-inputs"] == app_image.plan.final.tag
    assert config["Labels"]["sifu.role"] == "app"  # how converge and logs find the app container


def test_image_holds_the_rendered_configs_and_pinned_tools(app_image, docker_client):
    tree = render.render_all(app_image.settings)
    script = (
        "cat /etc/sifu/supervisord.conf; echo '=====';"
        "cat /etc/sifu/jupyter_server_config.py; echo '=====';"
        "/opt/venv/bin/python -c 'import jupyter_server, notebook, supervisor, sifu; print(jupyter_server.__version__, notebook.__version__)';"
        "stat -c '%u:%g' /notebooks /var/lib/sifu"
    )
    out = docker_client.containers.run(app_image.ref, ["bash", "-c", script], remove=True,
                                       network_mode="host").decode()
    supervisord, jupyter, rest = out.split("=====\n")
    assert supervisord == tree.files["image/supervisord.conf"].content
    assert jupyter == tree.files["image/jupyter_server_config.py"].content
    pins = dict(line.split("==") for line in (image.REPO_ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    versions, owners = rest.split("\n", 1)
    assert versions.split() == [pins["jupyter_server"], pins["notebook"]]
    assert owners.split() == ["1000:1000", "1000:1000"]


def test_second_build_image_task_does_no_build(app_image, docker_engine, docker_client):
    before = sorted(i.id for i in docker_client.images.list(all=True))
    result = run_inv("build-image", "--network", "host", engine=docker_engine, environ=app_image.environ)
    assert result.returncode == 0, result.stderr
    assert f"up to date: {app_image.ref} exists; not rebuilt" in result.stdout
    assert f"no build needed: {app_image.ref}" in result.stdout
    assert " | " not in result.stdout  # no build output at all
    assert sorted(i.id for i in docker_client.images.list(all=True)) == before


def test_changed_input_changes_the_tag_and_builds_only_the_final_image(app_image, docker_engine, docker_client):
    """A different port changes the rendered configs: a new final tag, the base is reused."""
    from tests.support.app_image import image_environ, load_settings
    from tests.support.processes import free_port

    environ = image_environ(free_port(), free_port())
    settings = load_settings(environ)
    plan = image.plan(settings)
    assert plan.base.ref == app_image.plan.base.ref
    assert plan.final.ref != app_image.ref
    result = run_inv("build-image", "--network", "host", engine=docker_engine, environ=environ)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"up to date: {plan.base.ref} exists; not rebuilt" in result.stdout
    assert f"built: {plan.final.ref}" in result.stdout
    assert f"{settings.image.name} | " in result.stdout  # build progress was streamed
    docker_client.images.remove(plan.final.ref)
