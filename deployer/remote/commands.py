"""Pure builders of the commands that converge an instance.

Nothing here runs anything. Each builder returns an argument list (or a shell line made from
argument lists with shlex.join), so a hostile value can only ever be one quoted argument.
The same builders feed Fabric (deployer/remote/executor.py) and the bundle's .platform hooks
(deployer/remote/hooks.py); unit tests compare their output as whole strings.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# AWS's recommended options for mounting EFS with the plain NFS client.
EFS_NFS_OPTIONS = "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"
# fstab options: wait for the network, and never block a boot when the volume is unreachable.
FSTAB_BOOT_OPTIONS = "_netdev,nofail"
# A mount flag (Linux 5.10+; AL2023 runs 6.1): the kernel follows no symlink whose path goes through this mount.
NOSYMFOLLOW = "nosymfollow"
EFS_HELPER = "/sbin/mount.efs"
FSTAB = "/etc/fstab"
MARKER_NAME = ".sifu-volume"
NGINX_CONF_DIR = "/etc/nginx/conf.d"
# The Go template docker inspect fills in: the container's address on its network(s).
INSPECT_ADDRESS = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
# Source directories of the container's bind mounts, one per line.
INSPECT_MOUNT_SOURCES = "{{range .Mounts}}{{println .Source}}{{end}}"
# The app container's cgroup limits as docker inspect shows them: memory, memory + swap, processes.
INSPECT_LIMITS = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}"
LINE_FORMAT = "%s\\n"
# One line per container in the "not exactly one app container" message.
LIST_FORMAT = "{{.ID}} {{.Image}} {{.Status}}"
IPV4 = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"


@dataclass(frozen=True)
class Var:
    """A shell variable reference, written as "$name" (quoted) where a builder puts it."""

    name: str

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise ValueError(f"not a shell variable name: {self.name!r}")


Arg = str | Var


def sh(*argv: Arg) -> str:
    """One shell command line: literals quoted with shlex.quote, variables as "$name"."""
    return " ".join(f'"${a.name}"' if isinstance(a, Var) else shlex.quote(a) for a in argv)


def _fstab_field(value: str, what: str) -> str:
    # fstab splits on whitespace; '#' starts a comment. Refuse rather than escape: config never allows them.
    if not value or any(ch.isspace() or ch == "#" or ord(ch) < 32 for ch in value):
        raise ValueError(f"{what} {value!r} cannot go into /etc/fstab (empty, or has whitespace, '#' or control characters)")
    return value


# --- mount -------------------------------------------------------------------------------------------


def efs_dns_name(file_system_id: str, region: str, availability_zone: str = "") -> str:
    """The EFS mount target name: fs-id.efs.region.amazonaws.com, prefixed by the AZ for One Zone."""
    name = f"{file_system_id}.efs.{region}.amazonaws.com"
    return f"{availability_zone}.{name}" if availability_zone else name


def detect_efs_helper() -> list[str]:
    """Exit 0 when amazon-efs-utils' mount helper is installed."""
    return ["test", "-x", EFS_HELPER]


def efs_helper_options(availability_zone: str = "", nosymfollow: bool = True) -> str:
    return "tls" + (f",az={availability_zone}" if availability_zone else "") + (f",{NOSYMFOLLOW}" if nosymfollow else "")


def efs_nfs_options(nosymfollow: bool = True) -> str:
    return EFS_NFS_OPTIONS + (f",{NOSYMFOLLOW}" if nosymfollow else "")


def mount_efs_with_helper(file_system_id: str, mount_point: str, availability_zone: str = "",
                          nosymfollow: bool = True) -> list[str]:
    return ["mount", "-t", "efs", "-o", efs_helper_options(availability_zone, nosymfollow), f"{file_system_id}:/", mount_point]


def mount_efs_with_nfs4(dns_name: str, mount_point: str, nosymfollow: bool = True) -> list[str]:
    return ["mount", "-t", "nfs4", "-o", efs_nfs_options(nosymfollow), f"{dns_name}:/", mount_point]


def fstab_efs_with_helper(file_system_id: str, mount_point: str, availability_zone: str = "",
                          nosymfollow: bool = True) -> str:
    return " ".join([_fstab_field(f"{file_system_id}:/", "file system"), _fstab_field(mount_point, "mount point"), "efs",
                     f"{FSTAB_BOOT_OPTIONS},{efs_helper_options(availability_zone, nosymfollow)}", "0", "0"])


def fstab_efs_with_nfs4(dns_name: str, mount_point: str, nosymfollow: bool = True) -> str:
    return " ".join([_fstab_field(f"{dns_name}:/", "file system"), _fstab_field(mount_point, "mount point"), "nfs4",
                     f"{efs_nfs_options(nosymfollow)},{FSTAB_BOOT_OPTIONS}", "0", "0"])


def mount_flags(mount_point: str) -> list[str]:
    """Prints the per-mount (VFS) options of what is mounted exactly at mount_point, e.g. rw,nosymfollow,relatime."""
    return ["findmnt", "-n", "-r", "-o", "VFS-OPTIONS", "--mountpoint", mount_point]


def add_nosymfollow(mount_point: str) -> list[str]:
    """Set nosymfollow on a mount that lacks it, without unmounting: a bind remount changes only the per-mount
    flags (the file system and its options stay as they are)."""
    return ["mount", "-o", f"remount,bind,{NOSYMFOLLOW}", mount_point]


@dataclass(frozen=True)
class S3Access:
    """How s3fs reaches the bucket. On instances: the instance role, no keys on disk.

    endpoint and passwd_file exist for tests against moto's S3 server, where there is no
    instance metadata service to hand out role credentials.
    """

    region: str
    endpoint: str = ""
    passwd_file: str = ""

    def options(self) -> list[str]:
        opts = [f"passwd_file={self.passwd_file}" if self.passwd_file else "iam_role=auto", "allow_other"]
        if self.endpoint:
            opts += [f"url={self.endpoint}", "use_path_request_style"]
        else:
            opts += [f"url=https://s3.{self.region}.amazonaws.com", f"endpoint={self.region}"]
        return opts


def mount_s3fs(bucket: str, mount_point: str, access: S3Access) -> list[str]:
    return ["s3fs", bucket, mount_point, "-o", ",".join(access.options())]


def fstab_s3fs(bucket: str, mount_point: str, access: S3Access) -> str:
    return " ".join([_fstab_field(bucket, "bucket"), _fstab_field(mount_point, "mount point"), "fuse.s3fs",
                     _fstab_field(",".join([FSTAB_BOOT_OPTIONS, *access.options()]), "options"), "0", "0"])


def is_mounted(mount_point: str) -> list[str]:
    return ["mountpoint", "-q", mount_point]


def mount_source(mount_point: str) -> list[str]:
    """Prints 'SOURCE FSTYPE VFS-OPTIONS' of what is mounted exactly at mount_point (raw: a space in a field is
    escaped as \\x20, so the three split on spaces), e.g. `fs-1.efs.us-east-1.amazonaws.com:/ nfs4 rw,nosymfollow`."""
    return ["findmnt", "-n", "-r", "-o", "SOURCE,FSTYPE,VFS-OPTIONS", "--mountpoint", mount_point]


def read_marker(variable: str, mount_point: str) -> list[str]:
    """Sets $variable to the marker's first line, or empty: the script's read_line function, a bash builtin
    read (no process: converge reads it up to three times per run)."""
    return ["read_line", Var(variable).name, marker_path(mount_point)]


def marker_path(mount_point: str) -> str:
    return f"{mount_point.rstrip('/')}/{MARKER_NAME}"


def write_marker(mount_point: str, volume_id: str) -> str:
    """Write the marker atomically through a unique temporary file: every instance may do this
    at the same moment on the shared volume, and a reader never sees a half-written id."""
    path = marker_path(mount_point)
    return (f"marker_tmp=$({sh('mktemp', f'{path}.XXXXXX')}) && chmod 0644 \"$marker_tmp\" && {sh('printf', LINE_FORMAT, volume_id)} > \"$marker_tmp\""
            f" && {sh('mv', '-f', Var('marker_tmp'), path)}")


def owner_and_mode(*paths: str) -> list[str]:
    """Prints 'UID:GID MODE' (octal, e.g. 1000:1000 755) of each path, one line each (one program for all)."""
    return ["stat", "-c", "%u:%g %a", *paths]


def chown(owner: str, path: str) -> list[str]:
    """Only path itself: never recursive (files below keep their owners)."""
    return ["chown", owner, path]


def chmod(mode: str, path: str) -> list[str]:
    return ["chmod", mode, path]


def has_fstab_line(line: Arg, fstab: str = FSTAB) -> str:
    """Exit 0 when fstab has exactly this line (as grep -qxF would), read by bash itself: converge starts no
    program for it (each one counts when many instances converge at once)."""
    return (f"{{ fstab_has=1; while IFS= read -r fstab_entry || [ -n \"$fstab_entry\" ]; do "
            f"if [ \"$fstab_entry\" = {sh(line)} ]; then fstab_has=0; fi; done < {shlex.quote(fstab)}; "
            "[ \"$fstab_has\" = 0 ]; }")


def replace_fstab_line(mount_point: str, line: Arg, fstab: str = FSTAB) -> str:
    """Drop any other entry for mount_point (second field, as awk '$2 != mp' would), append ours. Read whole
    into a variable first, then written with `>`, which keeps fstab's inode, owner and mode (it may be a bind
    mount); bash builtins only."""
    return (f"fstab_text=''; while IFS= read -r fstab_entry || [ -n \"$fstab_entry\" ]; do "
            "read -r _ fstab_mp _ <<<\"$fstab_entry\"; "
            f"if [ \"$fstab_mp\" != {shlex.quote(mount_point)} ]; then fstab_text+=\"$fstab_entry\"$'\\n'; fi; "
            f"done < {shlex.quote(fstab)}; "
            f"{sh('printf', '%s' + LINE_FORMAT, Var('fstab_text'), line)} > {shlex.quote(fstab)}")


# --- the app container ----------------------------------------------------------------------------------


def find_container(container_filter: str) -> list[str]:
    """Ids of running containers matching the filter: by default our image's label sifu.role=app (no AWS
    document names the Docker platform's container or image, so we find it by what we own)."""
    return ["docker", "ps", "-q", "--filter", container_filter]


def list_containers(container_filter: str) -> list[str]:
    """Every container matching the filter, running or not, for the message when there is not exactly one."""
    return ["docker", "ps", "-a", "--filter", container_filter, "--format", LIST_FORMAT]


def container_inspection(container: Arg) -> list[Arg]:
    """'IMAGE_ID MEMORY MEMORY_SWAP PIDS_LIMIT ADDRESS': the image the container runs, its limits (as
    container_limits prints them) and its address (empty without one), in one docker call."""
    return ["docker", "inspect", "-f", "{{.Image}} " + INSPECT_LIMITS + " " + INSPECT_ADDRESS, container]


def image_id(image_uri: str) -> list[str]:
    """The id of the local image the deployed version names (fails when it is not pulled here)."""
    return ["docker", "image", "inspect", "-f", "{{.Id}}", image_uri]


def container_mount_sources(container: Arg) -> list[Arg]:
    return ["docker", "inspect", "-f", INSPECT_MOUNT_SOURCES, container]


def container_limits(container: Arg) -> list[Arg]:
    """Prints 'MEMORY MEMORY_SWAP PIDS_LIMIT' (bytes, bytes, count; 0 or <nil> when unlimited)."""
    return ["docker", "inspect", "-f", INSPECT_LIMITS, container]


def limit_container(container: Arg, memory_bytes: Arg, pids_limit: int) -> list[Arg]:
    """Set the running container's memory (swap: none beyond it) and process limits in place: no restart, and
    the container keeps them across restarts (a new container, as EB's next deploy makes, needs them again)."""
    return ["docker", "update", "--memory", memory_bytes, "--memory-swap", memory_bytes,
            "--pids-limit", str(int(pids_limit)), container]


def restart_container(container: Arg) -> list[Arg]:
    """Restart only this container; the Docker service and other containers are left alone."""
    return ["docker", "restart", container]


def _docker(sudo: bool) -> list[str]:
    return ["sudo", "-n", "--", "docker"] if sudo else ["docker"]


def in_the_one_container(container_filter: str, sudo: bool, *argv: Arg) -> str:
    """A shell line that finds the one running app container, sets $c to its id, then runs `docker ARGV...`;
    exit 3 with a message naming the filter when there is not exactly one."""
    docker = _docker(sudo)
    find = sh(*docker, *find_container(container_filter)[1:])
    wrong = sh("printf", "expected exactly one running app container matching %s, found %s: %s\\n", container_filter)
    return (f"c=$({find}); n=$(printf %s \"$c\" | grep -c . || true); "
            f"if [ \"$n\" != 1 ]; then {wrong} \"$n\" \"$(echo $c)\" >&2; exit 3; fi; "
            f"{sh(*docker, *argv)}")


def container_logs(container_filter: str, tail: int, sudo: bool) -> str:
    """The shell line `inv logs` sends: the app container's last `tail` log lines (stdout and stderr)."""
    return in_the_one_container(container_filter, sudo, "logs", "--tail", str(int(tail)), Var("c")) + " 2>&1"


def student_usage(container_filter: str, notebook_root: str, sudo: bool) -> str:
    """The shell line `inv status` sends: sifu.usage's JSON (kernels, memory, disk per student) from inside the
    app container, run as root there (only root reads other uids' memory figures)."""
    return in_the_one_container(container_filter, sudo, "exec", "-u", "0", Var("c"),
                                "python", "-m", "sifu.usage", notebook_root)


# --- nginx --------------------------------------------------------------------------------------------


def nginx_test() -> list[str]:
    return ["nginx", "-t"]


def nginx_reload() -> list[str]:
    return ["nginx", "-s", "reload"]


def write_file(path: Arg, content: str) -> str:
    """printf the content, one quoted argument, into path."""
    return f"{sh('printf', '%s', content)} > {sh(path)}"


# --- running the converge script -----------------------------------------------------------------------


def run_script(script: str, phases: list[str], sudo: bool) -> str:
    """The command line Fabric sends: bash runs the script text with the phases as arguments."""
    argv = ["bash", "-c", script, "sifu-converge", *phases]
    return sh(*(["sudo", "-n", "--"] + argv if sudo else argv))
