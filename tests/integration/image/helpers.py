"""Running the real Invoke tasks against the test engine."""

from __future__ import annotations

import os
import subprocess
import sys

from deployer import REPO_ROOT


def run_inv(*args: str, engine, environ: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    """`inv ARGS` in a subprocess, pointed at the test engine; stdin closed, so never interactive."""
    env = {key: value for key, value in os.environ.items() if key != "DEPLOYMENT_TOKEN"}
    env.update(engine.env())
    env.update(environ)
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)
