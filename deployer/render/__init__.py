"""Every generated file: one jinja2 template each, rendered strictly, validated, then written.

- registry.py    the registry of generated files; render_all, option_settings
- validators.py  parsers, nginx -t, bash -n/shellcheck, cfn-lint, and the content-hash cache
- tree.py        Rendered, Tree, write_tree
The template engine and the shared contexts live in deployer/templating (re-exported here).
"""

from deployer.render.registry import HOOK_NAME, Output, option_settings, outputs, render_all
from deployer.render.tree import Rendered, Tree, write_tree
from deployer.render.validators import (
    check_cloudformation,
    check_nginx,
    check_shell,
    nginx_binary,
    nginx_test,
    scratch_nginx_conf,
    validate_tree,
)
from deployer.templating.context import (
    CONTAINER_CAPABILITIES,
    CONTAINER_JUPYTER_CONFIG,
    CONTAINER_NOTEBOOK_ROOT,
    CONTAINER_RUN_DIR,
    CONTAINER_STATE_DIR,
    CONTAINER_VENV,
    SERVICES,
    Facts,
    container_environment,
    container_memory_mb,
    frame_ancestors,
    image_uri,
    jupyter_context,
    jupyter_url,
    processes,
    public_host,
    public_scheme,
    secret_arns,
    secret_parameter_names,
    sifu_url,
    supervisord_context,
    upstream_context,
    upstream_name,
    vhost_context,
)
from deployer.templating.engine import RenderError, render_template

__all__ = [
    "CONTAINER_CAPABILITIES", "CONTAINER_JUPYTER_CONFIG", "CONTAINER_NOTEBOOK_ROOT", "CONTAINER_RUN_DIR", "CONTAINER_STATE_DIR", "CONTAINER_VENV",
    "HOOK_NAME", "SERVICES",
    "Facts", "Output", "RenderError", "Rendered", "Tree",
    "check_cloudformation", "check_nginx", "check_shell", "container_environment", "container_memory_mb", "frame_ancestors", "image_uri",
    "jupyter_context", "jupyter_url", "nginx_binary", "nginx_test", "option_settings", "outputs", "processes",
    "public_host", "public_scheme", "render_all", "render_template", "scratch_nginx_conf", "secret_arns",
    "secret_parameter_names", "sifu_url", "supervisord_context", "upstream_context", "upstream_name",
    "validate_tree", "vhost_context", "write_tree",
]
