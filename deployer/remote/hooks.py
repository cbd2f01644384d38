"""The converge actions as script steps for the bundle's .platform hooks."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from deployer.config import Settings


@dataclass(frozen=True)
class ScriptStep:
    title: str
    script: str


def converge_steps(s: Settings, facts) -> list[ScriptStep]:
    from deployer import render

    steps = []
    if s.storage.kind == "efs":
        mount = s.efs.mount_point
        steps.append(ScriptStep(
            "Refuse to serve notebooks from the instance's own disk.",
            f"mountpoint -q {shlex.quote(mount)} || {{ echo {shlex.quote(f'converge: {mount} is not mounted; run inv mount-efs')} >&2; exit 1; }}",
        ))
    lines = []
    for service in render.SERVICES:
        source = f'"$bundle_dir"/{render.BUNDLE_NGINX_DIR}/{service}.conf'
        lines.append(f"install -m 0644 {source} {shlex.quote(f'/etc/nginx/conf.d/sifu-{service}.conf')}")
    steps.append(ScriptStep("Install the nginx vhosts.", "\n".join(lines)))
    steps.append(ScriptStep("Check and reload nginx.", shlex.join(["nginx", "-t"]) + " && " + shlex.join(["nginx", "-s", "reload"])))
    return steps
