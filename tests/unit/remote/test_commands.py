"""The converge command builders, compared as whole command lines; hostile values stay one argument."""

import shlex
import subprocess

import pytest

from deployer.remote import commands as cmd
from deployer.remote.commands import S3Access, Var, sh

HOSTILE = [
    "/mnt/$(touch /tmp/sifurm-pwned)",
    "/mnt/`id`",
    "/mnt/a'b\"c",
    "/mnt/x;rm -rf /",
    "/mnt/{{ evil }}",
    "/mnt/../etc",
    "/mnt/line\nbreak",
]


def test_efs_dns_name_regional_and_one_zone():
    assert cmd.efs_dns_name("fs-0123abcd", "eu-west-1") == "fs-0123abcd.efs.eu-west-1.amazonaws.com"
    assert cmd.efs_dns_name("fs-0123abcd", "eu-west-1", "eu-west-1b") == "eu-west-1b.fs-0123abcd.efs.eu-west-1.amazonaws.com"


def test_mount_commands_whole_lines():
    assert sh(*cmd.detect_efs_helper()) == "test -x /sbin/mount.efs"
    assert sh(*cmd.mount_efs_with_helper("fs-0123abcd", "/mnt/efs")) == "mount -t efs -o tls,nosymfollow fs-0123abcd:/ /mnt/efs"
    assert sh(*cmd.mount_efs_with_helper("fs-0123abcd", "/mnt/efs", "us-east-1a")) == \
        "mount -t efs -o tls,az=us-east-1a,nosymfollow fs-0123abcd:/ /mnt/efs"
    assert sh(*cmd.mount_efs_with_helper("fs-0123abcd", "/mnt/efs", nosymfollow=False)) == \
        "mount -t efs -o tls fs-0123abcd:/ /mnt/efs"
    assert sh(*cmd.mount_efs_with_nfs4("fs-0123abcd.efs.us-east-1.amazonaws.com", "/mnt/efs")) == (
        "mount -t nfs4 -o nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,nosymfollow "
        "fs-0123abcd.efs.us-east-1.amazonaws.com:/ /mnt/efs")
    assert sh(*cmd.mount_efs_with_nfs4("fs-0123abcd.efs.us-east-1.amazonaws.com", "/mnt/efs", nosymfollow=False)) == (
        "mount -t nfs4 -o nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport "
        "fs-0123abcd.efs.us-east-1.amazonaws.com:/ /mnt/efs")
    assert sh(*cmd.is_mounted("/mnt/efs")) == "mountpoint -q /mnt/efs"
    assert sh(*cmd.mount_source("/mnt/efs")) == "findmnt -n -r -o SOURCE,FSTYPE,VFS-OPTIONS --mountpoint /mnt/efs"
    assert sh(*cmd.mount_flags("/mnt/efs")) == "findmnt -n -r -o VFS-OPTIONS --mountpoint /mnt/efs"
    assert sh(*cmd.add_nosymfollow("/mnt/efs")) == "mount -o remount,bind,nosymfollow /mnt/efs"


def test_fstab_lines():
    assert cmd.fstab_efs_with_helper("fs-0123abcd", "/mnt/efs") == "fs-0123abcd:/ /mnt/efs efs _netdev,nofail,tls,nosymfollow 0 0"
    assert cmd.fstab_efs_with_helper("fs-0123abcd", "/mnt/efs", nosymfollow=False) == \
        "fs-0123abcd:/ /mnt/efs efs _netdev,nofail,tls 0 0"
    assert cmd.fstab_efs_with_nfs4("fs-0123abcd.efs.us-east-1.amazonaws.com", "/mnt/efs") == (
        "fs-0123abcd.efs.us-east-1.amazonaws.com:/ /mnt/efs nfs4 "
        "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,nosymfollow,_netdev,nofail 0 0")


def test_container_limits_are_read_then_updated_in_place():
    assert sh(*cmd.container_limits(Var("cid"))) == \
        "docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}' \"$cid\""
    assert sh(*cmd.limit_container(Var("cid"), Var("memory_bytes"), 4096)) == \
        'docker update --memory "$memory_bytes" --memory-swap "$memory_bytes" --pids-limit 4096 "$cid"'


def test_s3fs_uses_the_instance_role_and_writes_no_keys():
    access = S3Access(region="us-east-1")
    assert sh(*cmd.mount_s3fs("notebooks-bucket", "/mnt/efs", access)) == (
        "s3fs notebooks-bucket /mnt/efs -o "
        "iam_role=auto,allow_other,url=https://s3.us-east-1.amazonaws.com,endpoint=us-east-1")
    assert cmd.fstab_s3fs("notebooks-bucket", "/mnt/efs", access) == (
        "notebooks-bucket /mnt/efs fuse.s3fs "
        "_netdev,nofail,iam_role=auto,allow_other,url=https://s3.us-east-1.amazonaws.com,endpoint=us-east-1 0 0")
    assert "passwd" not in " ".join(cmd.mount_s3fs("b-1", "/m", access))


def test_s3fs_test_access_with_endpoint_and_passwd_file():
    access = S3Access(region="us-east-1", endpoint="http://10.231.0.1:5000", passwd_file="/tmp/p")
    assert sh(*cmd.mount_s3fs("bkt", "/mnt/efs", access)) == \
        "s3fs bkt /mnt/efs -o passwd_file=/tmp/p,allow_other,url=http://10.231.0.1:5000,use_path_request_style"


def test_fstab_edits_whole_lines_in_bash_alone(tmp_path):
    """Run as the script runs them, on a copy of an fstab: the exact line or nothing, our mount point's other
    entries dropped, everything else kept byte for byte (comments, blanks, a last line without newline)."""
    fstab = tmp_path / "fstab"
    ours = "fs-1.efs.us-east-1.amazonaws.com:/ /mnt/efs nfs4 nfsvers=4.1,_netdev,nofail 0 0"
    fstab.write_text("# /etc/fstab\nUUID=1 / ext4 defaults 0 1\n\nold:/ /mnt/efs nfs4 defaults 0 0\n"
                     "tmpfs\t/mnt/efs2 tmpfs defaults 0 0\nlast / ext4 x 0 0")

    def bash(script: str) -> int:
        return subprocess.run(["bash", "-c", f"set -euo pipefail; line={shlex.quote(ours)}; {script}"]).returncode

    has = cmd.has_fstab_line(Var("line"), fstab=str(fstab))
    assert bash(has) == 1
    assert bash(cmd.replace_fstab_line("/mnt/efs", Var("line"), fstab=str(fstab))) == 0
    assert fstab.read_text() == ("# /etc/fstab\nUUID=1 / ext4 defaults 0 1\n\ntmpfs\t/mnt/efs2 tmpfs defaults 0 0\n"
                                 f"last / ext4 x 0 0\n{ours}\n")
    assert bash(has) == 0
    assert bash(cmd.has_fstab_line("fs-1.efs.us-east-1.amazonaws.com:/ /mnt/efs", fstab=str(fstab))) == 1  # whole lines
    assert "grep" not in has and "awk" not in cmd.replace_fstab_line("/mnt/efs", Var("line"))
    assert cmd.write_marker("/mnt/efs", "fs-0123abcd") == (
        "marker_tmp=$(mktemp /mnt/efs/.sifu-volume.XXXXXX) && chmod 0644 \"$marker_tmp\""
        " && printf '%s\\n' fs-0123abcd > \"$marker_tmp\" && mv -f \"$marker_tmp\" /mnt/efs/.sifu-volume")


def test_container_and_nginx_commands():
    assert sh(*cmd.find_container("label=sifu.role=app")) == "docker ps -q --filter label=sifu.role=app"
    assert sh(*cmd.list_containers("label=sifu.role=app")) == \
        "docker ps -a --filter label=sifu.role=app --format '{{.ID}} {{.Image}} {{.Status}}'"
    assert sh(*cmd.image_id("1.dkr.ecr.us-east-1.amazonaws.com/r:t")) == \
        "docker image inspect -f '{{.Id}}' 1.dkr.ecr.us-east-1.amazonaws.com/r:t"
    assert sh(*cmd.container_inspection(Var("cid"))) == \
        "docker inspect -f '{{.Image}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}" \
        " {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \"$cid\""
    assert sh(*cmd.read_marker("marker", "/mnt/efs")) == "read_line marker /mnt/efs/.sifu-volume"
    assert sh(*cmd.container_mount_sources(Var("cid"))) == \
        "docker inspect -f '{{range .Mounts}}{{println .Source}}{{end}}' \"$cid\""
    assert sh(*cmd.restart_container(Var("cid"))) == 'docker restart "$cid"'
    assert sh(*cmd.nginx_test()) == "nginx -t"
    assert sh(*cmd.nginx_reload()) == "nginx -s reload"


def test_run_script_line():
    assert cmd.run_script("echo hi", ["mount"], sudo=False) == "bash -c 'echo hi' sifu-converge mount"
    assert cmd.run_script("echo hi", ["mount", "nginx"], sudo=True) == \
        "sudo -n -- bash -c 'echo hi' sifu-converge mount nginx"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_survive_a_shlex_round_trip(value):
    for argv in (
        cmd.mount_efs_with_nfs4(value, value),
        cmd.mount_efs_with_helper(value, value),
        cmd.mount_s3fs(value, value, S3Access(region="us-east-1")),
        cmd.is_mounted(value),
        cmd.mount_source(value),
        cmd.find_container(value),
        cmd.container_inspection(value),
        ["bash", "-c", value, "sifu-converge", "mount"],
    ):
        assert shlex.split(sh(*argv)) == argv
    line = cmd.run_script(value, ["nginx"], sudo=True)
    assert shlex.split(line) == ["sudo", "-n", "--", "bash", "-c", value, "sifu-converge", "nginx"]


@pytest.mark.parametrize("value", ["/mnt/a b", "/mnt/a\tb", "/mnt/a\nb", "/mnt/#x", ""])
def test_fstab_refuses_what_would_split_or_comment_a_line(value):
    with pytest.raises(ValueError, match="fstab"):
        cmd.fstab_efs_with_nfs4("fs-1.efs.us-east-1.amazonaws.com", value)


def test_hostile_values_stay_literal_when_bash_runs_them(tmp_path):
    """Not just quoted on paper: bash prints the value back unchanged and runs nothing."""
    canary = tmp_path / "pwned"
    value = f"$(touch {canary}) `touch {canary}` ';touch {canary};' \"x\" {{{{ y }}}}\nz"
    out = subprocess.run(["bash", "-c", sh("printf", "%s", value)], capture_output=True, text=True, check=True).stdout
    assert out == value
    assert not canary.exists()


def test_var_names_are_checked():
    with pytest.raises(ValueError):
        Var("a; rm")


def test_container_logs_line_quotes_the_filter_and_uses_sudo_when_not_root():
    from deployer.remote import commands

    assert commands.container_logs("label=sifu.role=app", 50, sudo=False) == (
        "c=$(docker ps -q --filter label=sifu.role=app); n=$(printf %s \"$c\" | grep -c . || true); "
        "if [ \"$n\" != 1 ]; then printf 'expected exactly one running app container matching %s, found %s: %s\\n' "
        "label=sifu.role=app \"$n\" \"$(echo $c)\" >&2; exit 3; fi; docker logs --tail 50 \"$c\" 2>&1")
    hostile = commands.container_logs("ancestor=x$(reboot)", 5, sudo=True)
    assert "--filter 'ancestor=x$(reboot)'" in hostile and "sudo -n -- docker logs --tail 5" in hostile
