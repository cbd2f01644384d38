"""Checks on the rendered files before anything is written or deployed: parsers for JSON, YAML,
INI and Python; nginx -t; bash -n and shellcheck; cfn-lint. Linters are slow, so a pass is
remembered by content hash (VALIDATION_CACHE).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import yaml

from deployer import REPO_ROOT
from deployer.config import Settings
from deployer.render.tree import Rendered, Tree
from deployer.templating.context import upstream_context
from deployer.templating.engine import RenderError, render_template

VALIDATION_CACHE = REPO_ROOT / "build" / "validated"


def validate_tree(tree: Tree, s: Settings) -> list[str]:
    """Parse or lint every file; returns what was checked. Raises RenderError on the first failure."""
    done = []
    for f in tree.files.values():
        if f.kind == "json":
            _parse(f, lambda text: json.loads(text))
        elif f.kind in ("ebextensions", "cloudformation"):
            _parse(f, _load_yaml)
        elif f.kind == "python":
            _parse(f, lambda text: compile(text, f.path, "exec"))
        elif f.kind == "ini":
            _parse(f, _load_ini)
    done.append("parsed JSON, YAML, INI and Python")
    nginx_files = [f for f in tree.files.values() if f.kind == "nginx"]
    if nginx_files:
        vhosts = {Path(f.path).name: f.content for f in nginx_files}
        done.append(check_nginx(vhosts, render_template(".nginx/upstream.conf.j2", upstream_context(s, "127.0.0.1"))))
    shell = [f for f in tree.files.values() if f.kind == "shell"]
    if shell:
        done.append(check_shell(shell))
    cfn = [f for f in tree.files.values() if f.kind == "cloudformation"]
    if cfn:
        done.append(check_cloudformation(cfn))
    return done


def _parse(f: Rendered, parser: Callable[[str], Any]) -> None:
    try:
        parser(f.content)
    except Exception as exc:  # every parser has its own error type; all mean the same here
        raise RenderError(f"{f.path} (from {f.template}) does not parse as {f.kind}: {exc}") from None


def _load_yaml(text: str) -> Any:
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("expected a mapping at the top level")
    return data


def _load_ini(text: str) -> Any:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def _cached(kind: str, contents: list[str], check: Callable[[], str]) -> str:
    """Linters are slow; remember a pass by content hash so an unchanged render is quick."""
    digest = hashlib.sha256("\0".join([kind, *contents]).encode()).hexdigest()
    stamp = VALIDATION_CACHE / digest
    if stamp.exists():
        return stamp.read_text()
    result = check()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(result)
    return result


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def nginx_test(prefix: Path, conf: Path) -> subprocess.CompletedProcess:
    nginx = nginx_binary()
    assert nginx
    return subprocess.run([nginx, "-t", "-q", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)


def scratch_nginx_conf(prefix: Path, includes: list[Path], listen_free: bool = True) -> Path:
    """A minimal nginx.conf that includes the given files in its http block, all paths inside prefix."""
    for sub in ("logs", "tmp", "html"):  # html: nginx checks the root exists before variable log paths
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    lines = [
        # workers of a root master run as nobody, who cannot enter private temp dirs
        *(["user root root;"] if os.geteuid() == 0 else []),
        "daemon off;",
        f"pid {prefix}/nginx.pid;",
        f"error_log {prefix}/logs/error.log;",
        "events { worker_connections 256; }",
        "http {",
        f"    client_body_temp_path {prefix}/tmp/body;",
        f"    proxy_temp_path {prefix}/tmp/proxy;",
        f"    fastcgi_temp_path {prefix}/tmp/fastcgi;",
        f"    uwsgi_temp_path {prefix}/tmp/uwsgi;",
        f"    scgi_temp_path {prefix}/tmp/scgi;",
        f"    access_log {prefix}/logs/access.log;",
        *[f"    include {path};" for path in includes],
        "}",
    ]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def check_nginx(vhosts: dict[str, str], upstream: str) -> str:
    """nginx -t over the vhosts (name -> text) plus an upstream, in a scratch prefix."""
    if not nginx_binary():
        return "nginx not installed here: nginx -t skipped (install nginx to check vhosts before deploying)"

    def run() -> str:
        with tempfile.TemporaryDirectory(prefix="sifu-nginx-") as tmp:
            prefix = Path(tmp)
            logs = prefix / "logs"
            paths = []
            for name, text in {"upstream.conf": upstream, **vhosts}.items():
                path = prefix / name
                path.write_text(text.replace("/var/log/nginx", str(logs)))
                paths.append(path)
            (logs / "healthd").mkdir(parents=True, exist_ok=True)
            result = nginx_test(prefix, scratch_nginx_conf(prefix, paths))
            if result.returncode != 0:
                message = result.stderr.strip().replace(f"{prefix}/", "")
                raise RenderError(f"nginx -t rejected the rendered vhosts:\n{message}")
        return "nginx -t passed"

    return _cached("nginx", [upstream, *vhosts.values()], run)


def check_shell(files: list[Rendered]) -> str:
    def run() -> str:
        checked = []
        with tempfile.TemporaryDirectory(prefix="sifu-sh-") as tmp:
            for f in files:
                path = Path(tmp) / Path(f.path).name
                path.write_text(f.content)
                result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
                if result.returncode != 0:
                    raise RenderError(f"{f.path}: bash -n failed: {result.stderr.strip()}")
                shellcheck = _tool("shellcheck")
                if shellcheck:
                    result = subprocess.run([shellcheck, "-S", "warning", str(path)], capture_output=True, text=True)
                    if result.returncode != 0:
                        raise RenderError(f"{f.path}: shellcheck failed:\n{result.stdout.strip()}")
                    checked.append("shellcheck")
        return "bash -n passed" + (", shellcheck passed" if checked else " (shellcheck not installed)")

    return _cached("shell", [f.content for f in files], run)


def check_cloudformation(files: list[Rendered]) -> str:
    """cfn-lint the Resources as Elastic Beanstalk merges them: into a stack that has its own groups."""
    linter = _tool("cfn-lint")
    if not linter:
        return "cfn-lint not installed here: CloudFormation resources not linted"

    def run() -> str:
        resources = {
            "AWSEBSecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "stands in for the EB instance group"}},
            "AWSEBLoadBalancerSecurityGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "stands in for the EB load balancer group"}},
        }
        for f in files:
            resources.update(yaml.safe_load(f.content).get("Resources", {}))
        with tempfile.TemporaryDirectory(prefix="sifu-cfn-") as tmp:
            path = Path(tmp) / "template.yaml"
            path.write_text(yaml.safe_dump({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}))
            result = subprocess.run([linter, "--regions", "us-east-1", "--", str(path)], capture_output=True, text=True)
            if result.returncode not in (0, 4, 8, 12):  # warnings (4) and info (8) do not fail
                raise RenderError(f"cfn-lint rejected .ebextensions resources:\n{result.stdout.strip()}{result.stderr.strip()}")
        return "cfn-lint passed"

    return _cached("cfn", [f.content for f in files], run)


def _tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)
