"""inv converge against real sshd hosts, real nginx and nfs-ganesha standing in for EFS.

The test bed (tests/support/hosts.py) says what stands in for what: the kernel has no NFS
client, so each host's mount.nfs4 is a script (in that host's mount namespace only) that logs
its options, checks the export with nfs-ls against ganesha, then bind-mounts the exported
directory; the app containers are real HTTP servers behind a docker CLI stand-in.

The tests share one bed and run in file order: fresh converge, re-run, broken nginx, host down.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployer import REPO_ROOT, render
from deployer.remote import executor, hooks
from deployer.templating.context import container_memory_mb
from tests.support.hosts import curl
from tests.support.netns import SUBNET

pytestmark = pytest.mark.integration

FABRIC_HOSTS = slice(0, 3)  # h1..h3 are converged over SSH; h4 by its hook; h5 on S3 (test_s3fs.py)
# The vhosts and upstreams come with the bundle; converge writes only the servers files.
NGINX_FILES = ("conf.d/sifu-upstream.conf", "conf.d/sifu-sifu.conf", "conf.d/sifu-jupyter.conf",
               "sifu/sifu.servers", "sifu/jupyter.servers")


def inv(bed, *args, **overrides):
    _, environ = bed.settings(**overrides)
    env = {**os.environ, **environ}
    return subprocess.run([str(Path(sys.executable).parent / "inv"), "--search-root", str(REPO_ROOT), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def conf_files(host) -> dict[str, str]:
    return {name: (host.root / "etc-nginx" / name).read_text() for name in NGINX_FILES
            if (host.root / "etc-nginx" / name).exists()}



def assert_converged(bed, host):
    assert host.mounted_source(bed.mount_point), f"{host.name}: nothing mounted at {bed.mount_point}"
    assert host.read(f"{bed.mount_point}/.sifu-volume").strip() == bed.file_system_id
    fstab = host.read("/etc/fstab")
    assert (f"{bed.efs_names[0]}:/ {bed.mount_point} nfs4 nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,"
            "retrans=2,noresvport,nosymfollow,_netdev,nofail 0 0") in fstab.splitlines()
    # The mount has the flag, and the kernel honours it: a symlink on the volume is not followed (ELOOP).
    assert "nosymfollow" in host.run(f"findmnt -n -r -o VFS-OPTIONS --mountpoint {bed.mount_point}").stdout.strip().split(",")
    link = f"{bed.mount_point}/.link-{host.name}"
    followed = host.run(f"ln -sfn .sifu-volume {link} && cat {link}; status=$?; rm -f {link}; exit $status", check=False)
    assert followed.returncode != 0 and "Too many levels of symbolic links" in followed.stderr, followed
    # The app container's limits: memory is the instance's minus the 600 MiB reserve (swap: none beyond), 4096 pids.
    memory = container_memory_mb(bed.settings()[0], memory_mib()) * 1048576
    assert (host.root / "container" / "limits").read_text() == f"{memory} {memory} 4096\n"
    # The export started root:root 0755 like a new EFS; converge gave its root to the app user (uid 1000),
    # who can now write there, and left the marker root's.
    assert host.run(f"stat -c '%u:%g %a' {bed.mount_point} {bed.mount_point}/.sifu-volume").stdout.split("\n")[:2] == \
        ["1000:1000 755", "0:0 644"]
    probe = f"{bed.mount_point}/.probe-{host.name}"
    host.run(f"setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'echo ok > {probe} && cat {probe} && rm {probe}'")
    for port in bed.ports:  # through the host's nginx, from outside the host (converge waited out the old workers)
        status, body = curl(host.address, port, "/notebooks/x")
        assert (status, body) == (200, f"app {host.app_address}:{port} /notebooks/x\n")


def memory_mib() -> int:
    """MemTotal as the test hosts see it (they share this machine's /proc/meminfo)."""
    line = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    return int(line.split()[1]) // 1024


def test_converge_fresh_hosts(remote_bed):
    bed = remote_bed
    hosts = bed.hosts[FABRIC_HOSTS]
    bed.deploy_bundle(*hosts)
    for host in hosts:  # fresh: the bundle's vhosts answer 502 (placeholder servers), nothing is mounted
        assert curl(host.address, bed.ports[0])[0] == 502
        assert not host.mounted_source(bed.mount_point)
    result = inv(bed, "converge", "--hosts", ",".join(h.address for h in hosts))
    assert result.returncode == 0, result.stdout + result.stderr
    for host in hosts:
        assert_converged(bed, host)
        # The stand-in mount helper was called with AWS's recommended NFS options.
        # The stand-in mount helper was called with AWS's recommended NFS options, and nosymfollow.
        assert host.mount_log() == [f"{bed.efs_names[0]}:/ {bed.mount_point} "
                                    "rw,nosymfollow,nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"]
        # The container was started before the mount: it was restarted once so it sees the volume.
        assert len(host.restarts()) == 1
        # Its limits were set once, in place.
        [update] = host.docker_calls("update")
        assert update.startswith("docker update --memory ") and update.endswith(" --pids-limit 4096 c0ffee" + update[-6:])
    # One shared volume: a file written on h1 is read on h2 and h3.
    hosts[0].run(f"echo written-on-h1 > {bed.mount_point}/shared.txt")
    for host in hosts[1:]:
        assert host.read(f"{bed.mount_point}/shared.txt") == "written-on-h1\n"
    assert "changed" in result.stdout


def test_second_run_changes_nothing_and_does_not_reload(remote_bed):
    bed = remote_bed
    hosts = bed.hosts[FABRIC_HOSTS]
    def state(h):
        return h.nginx_reloads(), conf_files(h), h.read("/etc/fstab"), len(h.restarts()), len(h.mount_log()), \
            len(h.docker_calls("update"))

    before = [state(h) for h in hosts]
    result = inv(bed, "converge", "--hosts", ",".join(h.address for h in hosts))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no changes" in result.stdout
    assert [state(h) for h in hosts] == before


def test_nginx_rejecting_the_files_restores_them_and_keeps_serving(remote_bed):
    bed = remote_bed
    hosts = bed.hosts[FABRIC_HOSTS]
    s, _ = bed.settings()
    before = [conf_files(h) for h in hosts]
    reloads = [h.nginx_reloads() for h in hosts]
    broken = hooks.Templates(servers="tests/integration/remote/broken-servers.j2")
    result = executor.converge([h.address for h in hosts], s, render.Facts(offline=False), templates=broken)
    assert [h.status for h in result.hosts] == ["failed"] * 3
    for h in result.hosts:
        assert h.error.startswith("nginx: nginx -t rejected the new files; previous files restored")
        assert 'unknown directive "proxy_pass_everything_please"' in h.error  # nginx's own message
    assert [conf_files(h) for h in hosts] == before
    assert [h.nginx_reloads() for h in hosts] == reloads
    for host in hosts:
        assert_converged(bed, host)


def test_one_host_down_others_converge_and_the_table_names_it(remote_bed):
    bed = remote_bed
    h1, h2, h3 = bed.hosts[FABRIC_HOSTS]
    h1.reset()
    h3.reset()
    bed.deploy_bundle(h1, h3)
    h2.stop_ssh()
    try:
        result = inv(bed, "converge", "--hosts", ",".join(h.address for h in (h1, h2, h3)))
    finally:
        h2.start_ssh()
    assert result.returncode != 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith(f"{SUBNET}.")}
    assert rows[h1.address].split()[1] == "changed"
    assert rows[h3.address].split()[1] == "changed"
    assert rows[h2.address].split()[1] == "failed" and "unreachable" in rows[h2.address]
    assert f"converge failed on 1 of 3 host(s): {h2.address}" in result.stderr
    assert_converged(bed, h1)
    assert_converged(bed, h3)


def test_wrong_volume_at_the_mount_point_is_an_error(remote_bed):
    bed = remote_bed
    host = bed.hosts[0]
    host.reset()
    host.run(f"mkdir -p {bed.mount_point} && mount -t tmpfs sifurm-other {bed.mount_point}")
    result = inv(bed, "mount-efs", "--hosts", host.address)
    assert result.returncode != 0
    assert f"{bed.mount_point} is mounted from sifurm-other tmpfs, not {bed.file_system_id}" in result.stdout
    # nginx was not pointed anywhere: configure-nginx refuses while the volume is not ours.
    result = inv(bed, "configure-nginx", "--hosts", host.address)
    assert result.returncode != 0
    assert "is not the shared volume" in result.stdout
    assert conf_files(host) == {}
    host.reset()


def test_container_on_the_instance_disk_gets_no_traffic_until_restarted(remote_bed):
    """A container whose notebook root still shows the instance disk: nginx is not pointed at it;
    mount-efs restarts that container (only it), then configure-nginx goes ahead."""
    bed = remote_bed
    host = bed.hosts[0]
    bed.deploy_bundle(host)
    placeholders = conf_files(host)
    assert inv(bed, "mount-efs", "--hosts", host.address).returncode == 0
    (host.root / "container" / "view").write_text("disk\n")  # as if it had started before the mount
    refused = inv(bed, "configure-nginx", "--hosts", host.address)
    assert refused.returncode != 0
    assert "does not see fs-0123456789abcdef0 at its notebook root" in refused.stdout
    assert conf_files(host) == placeholders
    restarts = len(host.restarts())
    again = inv(bed, "mount-efs", "--hosts", host.address)
    assert again.returncode == 0 and "restarted container" in again.stdout
    assert len(host.restarts()) == restarts + 1
    assert inv(bed, "configure-nginx", "--hosts", host.address).returncode == 0
    assert_converged(bed, host)


def test_platform_hook_on_a_fresh_host_reaches_the_same_state(remote_bed):
    """The rendered .platform hook, run by itself on a fresh host, ends where Fabric's converge did."""
    bed = remote_bed
    hook_host, fabric_host = bed.hosts[3], bed.hosts[1]
    s, _ = bed.settings()
    tree = render.render_all(s, render.Facts(file_system_id=bed.file_system_id, offline=False))
    hook = bed.dir / "10-converge.sh"
    hook.write_text(tree.files[f"bundle/.platform/hooks/postdeploy/{render.HOOK_NAME}"].content)
    hook.chmod(0o755)
    bed.deploy_bundle(hook_host)
    run = hook_host.run(str(hook), check=False, timeout=120)  # as Elastic Beanstalk does: no arguments
    assert run.returncode == 0, run.stdout + run.stderr
    assert_converged(bed, hook_host)
    assert hook_host.read("/etc/fstab") == fabric_host.read("/etc/fstab")
    mine, theirs = conf_files(hook_host), conf_files(fabric_host)
    assert mine.keys() == theirs.keys() == set(NGINX_FILES)
    for name in NGINX_FILES:
        expected = theirs[name].replace(fabric_host.app_address, hook_host.app_address)
        assert mine[name] == expected
    again = hook_host.run(str(hook), check=False, timeout=120)
    assert again.returncode == 0 and "\tchanged\t" not in again.stdout, again.stdout + again.stderr


def test_bastion_gateway_from_config(remote_bed):
    """ssh.gateway: Fabric reaches the instance through the bastion (the instance sees the bastion as client)."""
    from fabric import Connection

    from tests.support.hosts import BRIDGE_ADDRESS

    bed = remote_bed
    bastion, target = bed.hosts[0], bed.hosts[2]

    def client_address(settings) -> str:
        with Connection(target.address, **executor.connection_kwargs(settings.ssh)) as conn:
            return conn.run('echo "$SSH_CLIENT"', hide=True, in_stream=False).stdout.split()[0]

    assert client_address(bed.settings()[0]) == BRIDGE_ADDRESS
    via_bastion, _ = bed.settings(**{"ssh.gateway": f"root@{bastion.address}"})
    assert client_address(via_bastion) == bastion.address
    result = executor.run_on_hosts([target.address], "true", via_bastion)
    assert result.hosts[0].ok, result.hosts[0].error


def test_proxy_command_from_config(remote_bed):
    """ssh.proxy_command (how an SSM session is used): here OpenSSH's `ssh -W` through a bastion host."""
    from fabric import Connection

    bed = remote_bed
    bastion, target = bed.hosts[0], bed.hosts[2]
    proxy = (f"ssh -q -i {bed.client_key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
             f"-o BatchMode=yes -W %h:%p root@{bastion.address}")
    s, _ = bed.settings(**{"ssh.proxy_command": proxy})
    with Connection(target.address, **executor.connection_kwargs(s.ssh)) as conn:
        assert conn.run('echo "$SSH_CLIENT"', hide=True, in_stream=False).stdout.split()[0] == bastion.address


def test_container_that_never_comes_fails_after_the_bounded_wait(remote_bed):
    bed = remote_bed
    host = bed.hosts[2]
    before = conf_files(host)
    running = host.root / "container" / "running"
    running.unlink()
    try:
        result = inv(bed, "configure-nginx", "--hosts", host.address, **{"remote.container_wait": 2})
    finally:
        running.write_text("")
    assert result.returncode != 0
    assert "no running container matched label=sifu.role=app within 2s" in result.stdout
    assert conf_files(host) == before


def test_two_app_containers_or_the_wrong_image_get_no_traffic(remote_bed):
    """Exactly one container labelled sifu.role=app, running the image the deployed version names."""
    bed = remote_bed
    host = bed.hosts[2]
    s, _ = bed.settings(**{"remote.container_wait": 2})
    before = conf_files(host)
    others = host.root / "container" / "others"
    others.write_text("c0ffee999999\n")
    try:
        result = executor.converge([host.address], s, render.Facts(offline=False), phases=["nginx"])
    finally:
        others.unlink()
    assert result.hosts[0].error.startswith("container: 2 running containers match label=sifu.role=app, "
                                            "expected exactly one"), result.hosts[0].error
    assert conf_files(host) == before
    images = host.root / "images"
    kept = images.read_text()
    images.write_text(kept + f"sifu-testbed/app:next sha256:{'ab' * 32}\n")
    try:
        wrong = executor.converge([host.address], s, render.Facts(offline=False, image_uri="sifu-testbed/app:next"),
                                  phases=["nginx"])
    finally:
        images.write_text(kept)
    assert conf_files(host) == before
    assert "running container c0ffee000003 is image sha256:5f" in wrong.hosts[0].error
    assert f"the deployed version names sifu-testbed/app:next (sha256:{'ab' * 32})" in wrong.hosts[0].error


def test_a_helper_refusing_nosymfollow_mounts_without_it_and_says_so(remote_bed):
    """The mount helper refuses the option (as an older mount.nfs would): converge mounts without it, says so, and
    writes the fstab line the mount really has. Once the helper accepts it, a re-run adds it by a bind remount."""
    bed = remote_bed
    host = bed.hosts[0]
    host.reset()
    bed.deploy_bundle(host)
    (host.root / "refuse-nosymfollow").write_text("")
    result = inv(bed, "mount-efs", "--hosts", host.address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "without nosymfollow: the mount helper refused it (mount.nfs4: an incorrect mount option was specified)" \
        in result.stdout
    assert [line.split()[2] for line in host.mount_log()] == [
        "rw,nosymfollow,nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport",
        "rw,nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"]
    assert "nosymfollow" not in host.read("/etc/fstab")
    assert "nosymfollow" not in host.run(f"findmnt -n -r -o VFS-OPTIONS --mountpoint {bed.mount_point}").stdout
    (host.root / "refuse-nosymfollow").unlink()
    again = inv(bed, "converge", "--hosts", host.address)
    assert again.returncode == 0 and "nosymfollow added" in again.stdout, again.stdout + again.stderr
    assert len(host.mount_log()) == 2  # not unmounted and mounted again
    assert_converged(bed, host)
    host.reset()


def test_limits_that_drifted_are_set_again(remote_bed):
    """Someone (or a new container) changed the limits: converge sets them again; the message says what they were."""
    bed = remote_bed
    host = bed.hosts[2]
    limits = host.root / "container" / "limits"
    wanted = limits.read_text()
    limits.write_text("0 0 <nil>\n")
    result = inv(bed, "configure-nginx", "--hosts", host.address, **{"remote.container_pids_limit": 512,
                                                                       "remote.container_memory_mb": 1024})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "memory 1024 MiB, 512 processes (was: 0 0 <nil>)" in result.stdout
    assert limits.read_text() == f"{1024 * 1048576} {1024 * 1048576} 512\n"
    limits.write_text(wanted)
