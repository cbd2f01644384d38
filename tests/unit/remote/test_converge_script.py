"""The converge script: one text for Fabric and the .platform hooks, valid shell, values quoted."""

import subprocess

import pytest

from deployer import render
from deployer.config import load
from deployer.remote import hooks
from deployer.remote.hooks import _dq


def settings(**env):
    environ = {"DEPLOY__EFS__FILE_SYSTEM_ID": "fs-0123456789abcdef0"}
    environ.update(env)
    return load(environ=environ, overrides_file=None).settings


def test_hook_files_are_the_script_fabric_sends():
    s = settings()
    facts = render.Facts()
    tree = render.render_all(s, facts, validate=False)
    script = hooks.converge_script(s, facts)
    assert tree.files[f"bundle/.platform/hooks/postdeploy/{render.HOOK_NAME}"].content == script
    assert tree.files[f"bundle/.platform/confighooks/postdeploy/{render.HOOK_NAME}"].content == script


@pytest.mark.parametrize("env", [{}, {"DEPLOY__STORAGE__KIND": "s3", "DEPLOY__STORAGE__S3_BUCKET": "notebooks-bucket"},
                                 {"DEPLOY__EFS__AVAILABILITY_ZONE": "us-east-1a"}])
def test_script_passes_bash_n_and_shellcheck(env):
    s = settings(**env)
    tree = render.Tree()
    text = hooks.converge_script(s, render.Facts())
    tree.files["hook.sh"] = render.Rendered("hook.sh", text, "shell")
    assert "shellcheck passed" in render.check_shell(list(tree.files.values()))


def test_script_mounts_with_helper_or_nfs4_and_keeps_fstab():
    text = hooks.converge_script(settings(), render.Facts())
    assert ("if test -x /sbin/mount.efs; then mount -t efs -o tls fs-0123456789abcdef0:/ /mnt/efs; else mount -t nfs4 -o "
            "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport "
            "fs-0123456789abcdef0.efs.us-east-1.amazonaws.com:/ /mnt/efs; fi") in text
    assert "_netdev,nofail" in text
    assert "systemctl" not in text and "service docker" not in text  # never the Docker service


def test_s3_script_has_iam_role_and_no_keys():
    text = hooks.converge_script(settings(DEPLOY__STORAGE__KIND="s3", DEPLOY__STORAGE__S3_BUCKET="notebooks-bucket"), render.Facts())
    assert "s3fs notebooks-bucket /mnt/efs -o iam_role=auto,allow_other" in text
    assert "passwd_file" not in text and "AWS_SECRET" not in text
    assert "s3://notebooks-bucket" in text


def test_missing_file_system_id_is_a_plain_error():
    s = load(environ={}, overrides_file=None).settings
    with pytest.raises(hooks.ConvergeError, match="efs.file_system_id"):
        hooks.converge_script(s, render.Facts(offline=False))


def test_phases_run_alone():
    s = settings()
    text = hooks.converge_script(s, render.Facts())
    # With a phase nobody asked for, bash runs no step at all: only the final line.
    out = subprocess.run(["bash", "-c", text, "sifu-converge", "none"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "sifu-converge\tfinished\tok\tconverge finished\n"


def test_messages_keep_values_literal(tmp_path):
    canary = tmp_path / "pwned"
    hostile = f'$(touch {canary})`touch {canary}`"\\'
    word = _dq("value {v} and $HOME", v=hostile)
    out = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, text=True, env={"HOME": "/h"}).stdout
    assert out == f"value {hostile} and /h"
    assert not canary.exists()


@pytest.mark.parametrize("rpm, dnf, expected", [
    (0, 1, "amazon-efs-utils\tok: installed"),
    (1, 0, "amazon-efs-utils\tchanged: installed with dnf"),
    (1, 1, "amazon-efs-utils\tnot installed (No match for argument: amazon-efs-utils): converge mounts with the NFS client"),
])
def test_efs_utils_hook_installs_when_missing_and_never_fails_the_deploy(tmp_path, rpm, dnf, expected):
    tree = render.render_all(settings(), render.Facts(), validate=False)
    for phase in ("hooks", "confighooks"):
        hook = tree.files[f"bundle/.platform/{phase}/prebuild/01-efs-utils.sh"]
        assert hook.mode == 0o755
    (tmp_path / "hook.sh").write_text(hook.content)
    for tool, code in (("rpm", rpm), ("dnf", dnf)):  # stand-ins: what the tools answer, and a log of the calls
        (tmp_path / tool).write_text(f"#!/bin/bash\necho \"{tool} $*\" >> {tmp_path}/calls\n"
                                     f"[ {code} = 0 ] || echo 'No match for argument: amazon-efs-utils' >&2\nexit {code}\n")
        (tmp_path / tool).chmod(0o755)
    out = subprocess.run(["bash", str(tmp_path / "hook.sh")], capture_output=True, text=True,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert out.returncode == 0 and out.stdout == expected + "\n", out
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["rpm -q amazon-efs-utils"] + (["dnf install -y amazon-efs-utils"] if rpm else [])


def test_s3_storage_has_no_efs_utils_hook():
    tree = render.render_all(settings(DEPLOY__STORAGE__KIND="s3", DEPLOY__STORAGE__S3_BUCKET="notebooks-bucket"),
                             render.Facts(), validate=False)
    assert not [path for path in tree.files if "efs-utils" in path]
    assert "bundle/.platform/hooks/prebuild/05-block-imds.sh" in tree.files


def test_the_container_limits_derive_from_the_instance_memory_or_are_pinned():
    from deployer import localrun

    s = settings()
    assert (s.remote.container_memory_mb, s.remote.host_memory_reserve_mb, s.remote.container_pids_limit) == (0, 600, 4096)
    assert render.container_memory_mb(s, 1950) == 1350  # a t3.small's MemTotal, about
    assert render.container_memory_mb(settings(DEPLOY__REMOTE__CONTAINER_MEMORY_MB="3000"), 1950) == 3000
    with pytest.raises(render.RenderError, match="lower remote.host_memory_reserve_mb or set remote.container_memory_mb"):
        render.container_memory_mb(s, 1000)
    # Local runs and the e2e stack start the container as an instance ends up: the same limits and capabilities.
    assert localrun.container_confinement(s, 1950) == {
        "cap_drop": ["ALL"], "cap_add": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP"],
        "security_opt": ["no-new-privileges:true"], "pids_limit": 4096, "mem_limit": 1350 * 1048576,
        "memswap_limit": 1350 * 1048576}
    text = hooks.converge_script(s, render.Facts())
    # The script's own lines, run on this machine's /proc/meminfo: MemTotal in MiB, less the reserve.
    memory_lines = [line for line in text.splitlines() if line.startswith(("memory_kib=", "memory_mib="))]
    run = subprocess.run(["bash", "-c", "\n".join([*memory_lines, "echo \"$memory_mib\""])], capture_output=True, text=True)
    mem_total_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    assert run.stdout.strip() == str(mem_total_kib // 1024 - 600), (memory_lines, run.stderr)
    assert 'docker update --memory "$memory_bytes" --memory-swap "$memory_bytes" --pids-limit 4096 "$cid"' in text
    pinned = hooks.converge_script(settings(DEPLOY__REMOTE__CONTAINER_MEMORY_MB="3000"), render.Facts())
    assert "memory_mib=3000" in pinned and "/proc/meminfo" not in pinned


def test_the_wait_for_old_nginx_workers_never_waits_on_the_script_itself():
    """pgrep -f matches whole command lines, and the script's own bash (or sudo) carries the script's text: an
    unanchored pattern made converge wait out its 5 s bound for itself on every reload."""
    import re

    from deployer.remote import commands

    s = settings()
    text = hooks.converge_script(s, render.Facts())
    (pattern,) = re.findall(r"pgrep -f '([^']+)'", text)
    ours = commands.run_script(text, ["mount", "nginx"], sudo=True)
    assert re.search(pattern, "nginx: worker process") and re.search(pattern, "nginx: worker process is shutting down")
    assert not re.search(pattern, ours) and not re.search(pattern, f"bash -c {text}")
