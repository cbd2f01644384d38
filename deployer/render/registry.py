"""Every generated file: one jinja2 template each, rendered strictly, validated, then written.

The render tree has three parts:
  bundle/  what goes into the Elastic Beanstalk source bundle (Dockerrun, .ebextensions, .platform)
  image/   what the Dockerfile copies into the image (supervisord.conf, jupyter_server_config.py)
  eb/      the environment's option settings, applied through the API by `inv deploy`
The nginx vhosts and upstreams ship in the bundle (.platform/nginx/conf.d); converge writes only the
upstreams' servers files on each instance.

This registry sits above both the shared template context and the converge script
(deployer/remote/hooks.py), whose text it renders into the bundle's .platform hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import yaml

from deployer.config import Settings
from deployer.remote import hooks
from deployer.render.tree import Rendered, Tree
from deployer.render.validators import validate_tree
from deployer.templating.context import (
    CONTAINER_JUPYTER_CONFIG,
    CONTAINER_KERNEL_BROKER_SOCKET,
    CONTAINER_NOTEBOOK_ROOT,
    CONTAINER_RUN_DIR,
    CONTAINER_USERS,
    CONTAINER_VENV,
    SERVICES,
    Facts,
    container_environment,
    image_uri,
    jupyter_context,
    processes,
    secret_arns,
    supervisord_context,
    vhost_context,
)
from deployer.templating.engine import render_template

HOOK_NAME = "10-converge.sh"
EFS_UTILS_HOOK_NAME = "01-efs-utils.sh"
SERVERS_HOOK_NAME = "02-nginx-servers.sh"
IMDS_HOOK_NAME = "05-block-imds.sh"
NGINX_CONF_D = "bundle/.platform/nginx/conf.d"


@dataclass(frozen=True)
class Output:
    path: str
    template: str
    kind: str
    context: Callable[[], dict[str, Any]]
    mode: int = 0o644


def outputs(s: Settings, facts: Facts) -> list[Output]:
    procs = processes(s)
    secrets = secret_arns(s, facts)
    files = [
        Output("image/supervisord.conf", "supervisord.conf.j2", "ini",
               lambda: supervisord_context(s, f"{CONTAINER_VENV}/bin/python", CONTAINER_JUPYTER_CONFIG, CONTAINER_RUN_DIR, CONTAINER_NOTEBOOK_ROOT,
                                           CONTAINER_USERS)),
        Output("image/jupyter_server_config.py", "jupyter_server_config.py.j2", "python",
               lambda: jupyter_context(s, CONTAINER_NOTEBOOK_ROOT, CONTAINER_KERNEL_BROKER_SOCKET)),
        Output("bundle/Dockerrun.aws.json", "Dockerrun.aws.json.j2", "json",
               lambda: {"image_uri": image_uri(s, facts), "ports": s.ports, "mount_point": s.efs.mount_point,
                        "container_notebook_root": CONTAINER_NOTEBOOK_ROOT}),
        Output("eb/option-settings.yml", ".ebextensions/option-settings.yml.j2", "ebextensions",
               lambda: {"eb": s.eb, "processes": procs, "environment": container_environment(s, facts), "secrets": secrets,
                        "instance_security_group": facts.instance_security_group,
                        "load_balancer_security_group": facts.load_balancer_security_group}),
    ]
    # Elastic Beanstalk's nginx includes .platform/nginx/conf.d/*.conf in its http context; kind "nginx" files
    # pass `nginx -t` here (with a fixed upstream) before anything is deployed.
    for service in SERVICES:
        files.append(Output(f"{NGINX_CONF_D}/{hooks.vhost_file(service)}", ".nginx/vhost.conf.j2", "nginx",
                            lambda service=service: vhost_context(s, service)))
    files.append(Output(f"{NGINX_CONF_D}/{hooks.UPSTREAM_FILE}", ".nginx/upstream.conf.j2", "text",
                        lambda: hooks.upstream_include_context(s)))
    hook = lambda: hooks.script_context(s, facts)  # noqa: E731
    for phase in ("hooks", "confighooks"):
        prebuild = f"bundle/.platform/{phase}/prebuild"
        if s.storage.kind == "efs":
            files.append(Output(f"{prebuild}/{EFS_UTILS_HOOK_NAME}", ".platform/efs-utils.sh.j2", "shell",
                                hooks.efs_utils_context, 0o755))
        files.append(Output(f"{prebuild}/{SERVERS_HOOK_NAME}", ".platform/nginx-servers.sh.j2", "shell",
                            lambda: hooks.placeholder_context(s), 0o755))
        files.append(Output(f"{prebuild}/{IMDS_HOOK_NAME}", ".platform/block-imds.sh.j2", "shell",
                            hooks.block_imds_context, 0o755))
        files.append(Output(f"bundle/.platform/{phase}/postdeploy/{HOOK_NAME}", ".platform/converge.sh.j2", "shell",
                            hook, 0o755))
    return files


def option_settings(tree: Tree) -> list[dict[str, str]]:
    """The rendered option settings as the API takes them: Namespace, OptionName, Value."""
    data = yaml.safe_load(tree.files["eb/option-settings.yml"].content)["option_settings"]
    return [{"Namespace": namespace, "OptionName": name, "Value": _option_value(value)}
            for namespace, options in data.items() for name, value in options.items()]


def _option_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_all(s: Settings, facts: Facts | None = None, validate: bool = True) -> Tree:
    facts = facts or Facts()
    tree = Tree()
    for out in outputs(s, facts):
        tree.files[out.path] = Rendered(out.path, render_template(out.template, out.context()), out.kind, out.mode, out.template)
    if validate:
        tree.validations = validate_tree(tree, s)
    return tree
