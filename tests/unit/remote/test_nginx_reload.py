"""The converge script's reload (deployer/remote/hooks.py nginx_reload_lines): bash's kill -HUP to the old workers'
one master, `nginx -s reload` otherwise. Each case runs in a PID namespace of its own (unshare, as root) with
stand-in nginx processes and a stand-in `nginx` command, so no real nginx on the machine is seen or signalled."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from deployer.remote import hooks

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="needs root and unshare (a PID namespace of its own)")

# A stand-in master: starts its workers (titled as nginx titles them), says it is ready, and writes HUP to a file
# each time it gets SIGHUP. Its own title is given by the driver (bash's exec -a).
MASTER = """
import signal, subprocess, sys, time
out, workers = sys.argv[1], int(sys.argv[2])
signal.signal(signal.SIGHUP, lambda *_: open(out, "a").write("HUP\\n"))
children = [subprocess.Popen(["nginx: worker process", "600"], executable=sys.argv[3]) for _ in range(workers)]
open(out + ".ready", "w").close()
while True:
    time.sleep(1)
"""

# The script's helpers the reload lines use (as in .platform/converge.sh.j2).
HELPERS = r"""
read_file() { printf -v "$1" '%s' ''; IFS= read -r -d '' "$1" 2>/dev/null <"$2" || true; }
fail() { printf 'FAILED %s: %s\n' "$1" "$2"; exit 1; }
"""


def run_reload(tmp_path, masters: list[tuple[str, int]]) -> tuple[list[str], str]:
    """Start one stand-in master per (title, workers), run the reload lines; (HUPs per master, stand-in nginx's log)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nginx").write_text(f"#!/bin/bash\necho \"nginx $*\" >> {tmp_path}/nginx.log\n")
    (bin_dir / "nginx").chmod(0o755)
    start = []
    for index, (title, workers) in enumerate(masters):
        out = tmp_path / f"master{index}"
        start.append(f"(exec -a {shlex.quote(title)} {sys.executable} -c {shlex.quote(MASTER)} {out} {workers} "
                     f"{shutil.which('sleep')} &)")
        # Bounded wait for the master to have started its workers (not an assertion).
        start.append(f"for i in $(seq 100); do [ -e {out}.ready ] && break; sleep 0.05; done")
    # After the reload: wait (bounded) until the one master signalled has written its HUP, or nginx was run.
    settle = f"for i in $(seq 100); do compgen -G '{tmp_path}/master*[0-9]' >/dev/null && break; [ -e {tmp_path}/nginx.log ] && break; sleep 0.05; done"
    driver = "\n".join(["set -euo pipefail", f"export PATH={bin_dir}:$PATH", HELPERS, *start,
                        *hooks.nginx_reload_lines(), settle])
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "bash", "-c", driver],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    hups = [(tmp_path / f"master{i}").read_text() if (tmp_path / f"master{i}").exists() else "" for i in range(len(masters))]
    log = tmp_path / "nginx.log"
    return hups, log.read_text() if log.exists() else ""


def test_the_one_master_of_the_old_workers_gets_sighup_from_bash(tmp_path):
    hups, nginx_log = run_reload(tmp_path, [("nginx: master process /usr/sbin/nginx", 2)])
    assert hups == ["HUP\n"] and nginx_log == ""


@pytest.mark.parametrize("masters", [
    [("nginx: master process /usr/sbin/nginx", 1), ("nginx: master process /opt/nginx", 1)],  # two masters
    [("python3 not-nginx", 1)],  # the workers' parent is not titled nginx's master
    [],  # no workers at all
], ids=["two masters", "parent not a master", "no workers"])
def test_otherwise_nginx_s_reload_as_before(tmp_path, masters):
    hups, nginx_log = run_reload(tmp_path, masters)
    assert hups == [""] * len(masters) and nginx_log == "nginx -s reload\n"
