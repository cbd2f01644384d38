"""The converge script: the same text runs from the bundle's .platform hooks and over Fabric.

converge_steps() composes the builders of deployer/remote/commands.py into ensure-style steps
(check first, act only when needed, "already there" is success). The template
.platform/converge.sh.j2 wraps them; Fabric sends that same rendered script with the phases
to run, so an instance that autoscaling launches ends up exactly like one set up over SSH.

Each step prints one line `sifu-converge<TAB>step<TAB>ok|changed|failed<TAB>detail` that the
executor turns into the per-host table. The first failure stops the script (exit 1).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from deployer.config import Settings
from deployer.remote import commands as cmd
from deployer.remote.commands import Var, sh
from deployer.templating.context import (CONTAINER_NOTEBOOK_ROOT, MIN_CONTAINER_MEMORY_MB, SERVICES, upstream_name,
                                         vhost_context)
from deployer.templating.engine import render_template

PHASES = ("mount", "nginx")
REPORT_PREFIX = "sifu-converge"
ADDRESS_PLACEHOLDER = "__SIFU_CONTAINER_ADDRESS__"
# The vhosts and upstreams come with the bundle (.platform/nginx/conf.d, in nginx's http context); each
# upstream includes its run-time servers file, the only nginx file converge writes.
UPSTREAM_FILE = "sifu-upstream.conf"
SERVERS_DIR = "/etc/nginx/sifu"
# Until converge knows the container: a servers file that lets `nginx -t` pass; its server is marked down,
# so nginx answers 502 and never proxies to itself (it listens on the same ports).
PLACEHOLDER_ADDRESS = "127.0.0.1"
HEALTHD_LOG_DIR = "/var/log/nginx/healthd"
# The instance metadata service's addresses (IPv6: Nitro instances, when its endpoint is turned on).
IMDS_IPV4 = "169.254.169.254/32"
IMDS_IPV6 = "fd00:ec2::254/128"
IMDS_UNIT = "sifu-block-imds"
EFS_UTILS_PACKAGE = "amazon-efs-utils"
# Offline renders (`inv render` before deploy has created the file system) show this stand-in id;
# deploy renders the bundle with the real one.
OFFLINE_FILE_SYSTEM_ID = "fs-00000000"
DEFAULT_VHOST_TEMPLATE = ".nginx/vhost.conf.j2"
DEFAULT_UPSTREAM_TEMPLATE = ".nginx/upstream.conf.j2"
DEFAULT_SERVERS_TEMPLATE = ".nginx/upstream.servers.j2"
# The notebook root: the app user writes, others read; the marker: root writes, everyone reads.
ROOT_MODE = "755"
MARKER_MODE = "644"


class ConvergeError(Exception):
    """The settings do not allow building a converge script (says which setting to fix)."""


@dataclass(frozen=True)
class ScriptStep:
    """One ensure-style step of the converge script: what it does, its shell text, its phase."""

    title: str
    script: str
    phase: str = "nginx"


@dataclass(frozen=True)
class Templates:
    """The nginx templates to render (paths relative to the repository); a seam for tests."""

    vhost: str = DEFAULT_VHOST_TEMPLATE
    upstream: str = DEFAULT_UPSTREAM_TEMPLATE
    servers: str = DEFAULT_SERVERS_TEMPLATE


def volume_id(s: Settings, facts) -> str:
    """What the marker holds: the EFS id, or s3://bucket."""
    if s.storage.kind == "s3":
        return f"s3://{s.storage.s3_bucket}"
    fs_id = getattr(facts, "file_system_id", "") or s.efs.file_system_id
    if not fs_id and getattr(facts, "offline", False):
        return OFFLINE_FILE_SYSTEM_ID
    if not fs_id:
        raise ConvergeError("efs.file_system_id is empty: set it (or EFS_ID) to the file system to mount; "
                            "`inv deploy` fills it in once it has created the file system")
    return fs_id


def vhost_file(service: str) -> str:
    return f"sifu-{service}.conf"


def servers_file(service: str) -> str:
    return f"{SERVERS_DIR}/{service}.servers"


def upstream_include_context(s: Settings) -> dict:
    """The bundle's upstream blocks: each includes its servers file instead of naming an address."""
    return {"upstreams": [{"name": upstream_name(svc), "include": servers_file(svc)} for svc in SERVICES]}


def bundle_nginx_files(s: Settings, templates: Templates = Templates()) -> dict[str, str]:
    """conf.d file name -> content: what the bundle ships in .platform/nginx/conf.d (static per config)."""
    files = {UPSTREAM_FILE: render_template(templates.upstream, upstream_include_context(s))}
    for service in SERVICES:
        files[vhost_file(service)] = render_template(templates.vhost, vhost_context(s, service))
    return files


def servers_files(s: Settings, address: str, templates: Templates = Templates(), placeholder: bool = False) -> dict[str, str]:
    """servers file path -> content, for the container at address (or ADDRESS_PLACEHOLDER)."""
    return {servers_file(svc): render_template(templates.servers, {"address": address, "port": getattr(s.ports, svc),
                                                                   "placeholder": placeholder})
            for svc in SERVICES}


def placeholder_context(s: Settings, templates: Templates = Templates()) -> dict:
    """The context of .platform/nginx-servers.sh.j2: the servers files with the placeholder address, quoted."""
    files = servers_files(s, PLACEHOLDER_ADDRESS, templates, placeholder=True)
    return {"servers_dir": shlex.quote(SERVERS_DIR),
            "files": [{"path": shlex.quote(path), "content": shlex.quote(content)} for path, content in files.items()]}


def block_imds_context() -> dict:
    """The context of .platform/block-imds.sh.j2 (constants: the metadata addresses and where it installs itself)."""
    return {"ipv4": IMDS_IPV4, "ipv6": IMDS_IPV6, "installed": shlex.quote(f"/usr/local/sbin/{IMDS_UNIT}"),
            "unit_file": shlex.quote(f"/etc/systemd/system/{IMDS_UNIT}.service"),
            "unit_name": shlex.quote(f"{IMDS_UNIT}.service")}


def efs_utils_context() -> dict:
    return {"package": EFS_UTILS_PACKAGE}


def _escape(text: str, allow_vars: bool) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    return out if allow_vars else out.replace("$", "\\$")


def _dq(message: str, **values: str) -> str:
    """A double-quoted shell word. message is our own text and may use $var; {name} slots get
    values escaped so that nothing in them expands (a hostile value stays literal)."""
    escaped = {name: _escape(str(value), allow_vars=False) for name, value in values.items()}
    return '"' + _escape(message, allow_vars=True).format(**escaped) + '"'


def _fail(step: str, message: str, **values: str) -> str:
    return f"fail {step} {_dq(message, **values)}"


def _report(step: str, status: str, message: str, **values: str) -> str:
    return f"report {step} {status} {_dq(message, **values)}"


# --- mount phase ---------------------------------------------------------------------------------------


def _mount_commands(s: Settings, access: cmd.S3Access | None) -> tuple[str, str, str]:
    """(shell that mounts, shell that mounts without nosymfollow or "" for S3, shell that sets $fstab_line) for the
    configured storage. The fstab line matches the mount: with nosymfollow when the mount has it."""
    mp = s.efs.mount_point
    if s.storage.kind == "s3":
        access = access or cmd.S3Access(region=s.eb.region)
        return (sh(*cmd.mount_s3fs(s.storage.s3_bucket, mp, access)), "",
                f"fstab_line={shlex.quote(cmd.fstab_s3fs(s.storage.s3_bucket, mp, access))}")
    fs_id, az = s.efs.file_system_id, s.efs.availability_zone
    dns = cmd.efs_dns_name(fs_id, s.efs.region, az)
    detect = sh(*cmd.detect_efs_helper())

    def either(flag: bool) -> tuple[str, str]:
        return (f"if {detect}; then {sh(*cmd.mount_efs_with_helper(fs_id, mp, az, flag))}; "
                f"else {sh(*cmd.mount_efs_with_nfs4(dns, mp, flag))}; fi",
                f"if {detect}; then fstab_line={shlex.quote(cmd.fstab_efs_with_helper(fs_id, mp, az, flag))}; "
                f"else fstab_line={shlex.quote(cmd.fstab_efs_with_nfs4(dns, mp, flag))}; fi")

    (mount, fstab), (mount_plain, fstab_plain) = either(True), either(False)
    # The mount step of the same run knows whether the mount has nosymfollow ($has_nosymfollow): no second findmnt.
    known = f"{{ [ \"${{has_nosymfollow:-}}\" = 1 ] || {{ [ -z \"${{has_nosymfollow:-}}\" ] && {_has_nosymfollow(mp)}; }}; }}"
    return mount, mount_plain, f"if {known}; then\n    {fstab}\nelse\n    {fstab_plain}\nfi"


# ok, or changed when converge added nosymfollow to a mount that lacked it.
MOUNT_STATUS = '"$mount_status"'


def _has_nosymfollow(mp: str) -> str:
    """Exit 0 when the mount's per-mount options include nosymfollow: matched by bash, not grep."""
    return f"[[ ,{_output(sh(*cmd.mount_flags(mp)))}, == *,{cmd.NOSYMFOLLOW},* ]]"


def _output(command: str, stderr: str = "2>/dev/null") -> str:
    """$(command) as one process: bash forks a second subshell for `$(cmd 2>/dev/null)` or `$(cmd || true)`, not
    for `$(exec cmd 2>/dev/null)` (each process counts when many instances converge at once). An assignment from
    it takes `|| true` outside when the command may fail."""
    return f"$(exec {command}{' ' + stderr if stderr else ''})"


def _mount_efs_lines(mount: str, mount_plain: str, vid: str, mp: str) -> list[str]:
    """Mount; when that fails and there is a fallback (EFS: the same without nosymfollow, which an older mount
    helper may refuse), try it and say so in $symlinks_note. Only a failure of both fails the step."""
    fail = _fail("mount", "mounting {vid} at {mp} failed: $mount_output", vid=vid, mp=mp)
    if not mount_plain:
        return [f"    if ! mount_output=$({{ {mount}; }} 2>&1); then", f"        {fail}", "    fi"]
    return [
        "    has_nosymfollow=1",
        f"    if ! refused_output=$({{ {mount}; }} 2>&1); then",
        f"        if ! mount_output=$({{ {mount_plain}; }} 2>&1); then {fail}; fi",
        "        has_nosymfollow=0 symlinks_note=" + _dq(" without {flag}: the mount helper refused it ($refused_output)", flag=cmd.NOSYMFOLLOW),
        "    fi",
    ]


def _existing_mount_lines(s: Settings, mp: str) -> list[str]:
    """An EFS volume mounted before converge asked for nosymfollow gets it by a bind remount (no unmount); when
    that is refused, the mount stays as it is and the report says so."""
    if s.storage.kind == "s3":
        return []
    return [
        "    has_nosymfollow=1",
        f"    if ! [[ ,$mounted_flags, == *,{cmd.NOSYMFOLLOW},* ]]; then",
        f"        if remount_output=$({sh(*cmd.add_nosymfollow(mp))} 2>&1); then mount_status=changed symlinks_note=" + _dq("; {flag} added", flag=cmd.NOSYMFOLLOW),
        "        else has_nosymfollow=0 symlinks_note=" + _dq("; without {flag} (remount refused: $remount_output)", flag=cmd.NOSYMFOLLOW) + "; fi",
        "    fi",
    ]


def mount_steps(s: Settings, facts, access: cmd.S3Access | None = None) -> list[ScriptStep]:
    mp = s.efs.mount_point
    vid = volume_id(s, facts)
    if s.storage.kind == "efs":
        # facts may carry the id of a file system deploy just created.
        s = s.model_copy(update={"efs": s.efs.model_copy(update={"file_system_id": vid})})
    qmp = shlex.quote(mp)
    marker = cmd.marker_path(mp)
    mount, mount_plain, fstab = _mount_commands(s, access)
    # What makes a mounted volume "ours" when it has no marker yet.
    if s.storage.kind == "s3":
        ours = '[[ $mounted_from == *" fuse.s3fs" ]]'
    else:
        # nfs4 shows the DNS name (it holds the id); efs-utils' TLS mounts show 127.0.0.1:/ and
        # keep a state file named after the file system under /var/run/efs.
        ours = (f"{{ [[ $mounted_from == *{shlex.quote(vid)}* ]] || {{ [[ $mounted_from == '127.0.0.1:/ nfs4' ]]"
                f" && compgen -G {shlex.quote(f'/var/run/efs/{vid}.*')} >/dev/null; }}; }}")
    read_marker = "marker=''; " + sh(*cmd.read_marker("marker", mp))  # assigned first: shellcheck sees it
    steps = [
        ScriptStep("Create the mount point.", "\n".join([
            f"if [ -d {qmp} ]; then {_report('mount-point', 'ok', '{mp} exists', mp=mp)}",
            f"else mkdir -p {qmp} && {_report('mount-point', 'changed', 'created {mp}', mp=mp)}; fi",
        ]), "mount"),
        ScriptStep(f"Mount {vid} at {mp} ({cmd.NOSYMFOLLOW} for EFS); a different volume already there is an error.", "\n".join([
            "symlinks_note=''; mount_status=ok",
            f"if {sh(*cmd.is_mounted(mp))}; then",
            f"    {read_marker}",
            # One findmnt for the source and the options ($mounted_flags: the nosymfollow check below); of mounts
            # stacked there, the last line is the one on top, which is what the mount point shows.
            f"    mounted={_output(sh(*cmd.mount_source(mp)), '')} || true; mounted=${{mounted##*$'\\n'}}",
            f"    read -r mounted_source mounted_type {'_' if s.storage.kind == 's3' else 'mounted_flags'} <<<\"$mounted\" || true;"
            " mounted_from=\"$mounted_source${mounted_type:+ $mounted_type}\"",
            f"    if [ -n \"$marker\" ] && [ \"$marker\" != {shlex.quote(vid)} ]; then " + _fail("mount", "{mp} is mounted from another volume: its marker says $marker, expected {vid} (mounted: $mounted_from). Unmount it, or fix the volume id in the config", mp=mp, vid=vid),
            f"    elif [ -z \"$marker\" ] && ! {ours}; then " + _fail("mount", "{mp} is mounted from $mounted_from, not {vid}. Unmount it (umount {mp}) and run converge again", mp=mp, vid=vid),
            "    fi",
            *_existing_mount_lines(s, mp),
            f"    if [ \"$marker\" = {shlex.quote(vid)} ]; then {_report('mount', MOUNT_STATUS, '{mp} already holds {vid}$symlinks_note', mp=mp, vid=vid)}",
            f"    else {_report('mount', MOUNT_STATUS, '{mp} already mounted from $mounted_from$symlinks_note', mp=mp)}; fi",
            "else",
            # Anything under the mount point, dot files too (a glob, not ls: no program started).
            f"    shopt -s nullglob dotglob; disk_entries=({qmp}/*); shopt -u nullglob dotglob",
            "    if [ ${#disk_entries[@]} -gt 0 ]; then",
            "        " + _fail("mount", "{mp} is not mounted but holds files on the instance's own disk; move them aside (they would be hidden) and run converge again", mp=mp),
            "    fi",
            *_mount_efs_lines(mount, mount_plain, vid, mp),
            f"    {_report('mount', 'changed', 'mounted {vid} at {mp}$symlinks_note', vid=vid, mp=mp)}",
            "fi",
        ]), "mount"),
        ScriptStep("Keep the mount across reboots: an fstab entry with _netdev,nofail.", "\n".join([
            fstab,
            f"if {cmd.has_fstab_line(Var('fstab_line'))}; then {_report('fstab', 'ok', 'entry present')}",
            f"else {cmd.replace_fstab_line(mp, Var('fstab_line'))} && {_report('fstab', 'changed', 'entry written: $fstab_line')}; fi",
        ]), "mount"),
        ScriptStep(f"Mark the volume: {marker} holds its id, which Sifu checks before it writes.", "\n".join([
            f"{read_marker}",
            f"if [ \"$marker\" = {shlex.quote(vid)} ]; then {_report('marker', 'ok', '{marker} holds {vid}', marker=marker, vid=vid)}",
            f"else {cmd.write_marker(mp, vid)} && {_report('marker', 'changed', 'wrote {vid} to {marker}', vid=vid, marker=marker)}; fi",
            # Mounted (the step before failed otherwise) and marked: the nginx phase of this run need not ask again.
            "volume_ready=1",
        ]), "mount"),
        *([_owner_step(s)] if s.storage.kind == "efs" else []),
        ScriptStep("Restart the app container (only it) when its notebook root does not show the volume yet.",
                   _container_lookup(s, wait=False) + "\n" + "\n".join([
            _not_one_container(s, "app-container"),
            "if [ -z \"$cid\" ]; then " + _report("app-container", "ok", "no app container running yet"),
            f"elif [ \"{_output(_container_reads_marker())}\" = {shlex.quote(vid)} ]; then "
            # The nginx phase of this same run need not ask again (one docker exec less per instance).
            + "container_sees=$cid; " + _report("app-container", "ok", "container $cid sees {vid}", vid=vid),
            f"elif mount_sources=$'\\n'{_output(sh(*cmd.container_mount_sources(Var('cid'))))}$'\\n';"
            f" [[ $mount_sources != *$'\\n'{qmp}$'\\n'* ]]; then "
            + _report("app-container", "ok", "container $cid does not bind {mp}; left alone", mp=mp),
            f"elif {sh(*cmd.restart_container(Var('cid')))} >/dev/null; then "
            + _report("app-container", "changed", "restarted container $cid so its bind mount of {mp} shows the volume", mp=mp),
            "else " + _fail("app-container", "docker restart $cid failed; restart the app container by hand (not the Docker service)"),
            "fi",
        ]), "mount"),
    ]
    return steps


def _owner_step(s: Settings) -> ScriptStep:
    """A new EFS root is root:root 0755: only root could write. The app user gets the root directory (not
    recursively: per-user directories may belong to other uids later); the marker stays root's, read-only."""
    mp, marker = s.efs.mount_point, cmd.marker_path(s.efs.mount_point)
    owner = f"{s.storage.owner_uid}:{s.storage.owner_gid} {ROOT_MODE}"
    return ScriptStep(f"Give the notebook root to the app user ({owner}); the marker stays root's (0:0 {MARKER_MODE}).", "\n".join([
        f"owners={_output(sh(*cmd.owner_and_mode(mp, marker)))} || true; root_now=${{owners%%$'\\n'*}}; marker_now=''",
        "if [[ $owners == *$'\\n'* ]]; then marker_now=${owners#*$'\\n'}; fi",
        f"if [ \"$root_now\" = {shlex.quote(owner)} ] && [ \"$marker_now\" = {shlex.quote(f'0:0 {MARKER_MODE}')} ]; then "
        + _report("owner", "ok", "{mp} is {owner}", mp=mp, owner=owner),
        f"elif {sh(*cmd.chown(f'{s.storage.owner_uid}:{s.storage.owner_gid}', mp))} && {sh(*cmd.chmod(ROOT_MODE, mp))}"
        f" && {sh(*cmd.chown('0:0', marker))} && {sh(*cmd.chmod(MARKER_MODE, marker))}; then "
        + _report("owner", "changed", "{mp} was $root_now, now {owner}; marker was $marker_now", mp=mp, owner=owner),
        "else " + _fail("owner", "could not give {mp} to {owner} (was $root_now); is the volume read-only or root-squashed?",
                        mp=mp, owner=owner),
        "fi",
    ]), "mount")


def _container_marker() -> str:
    return cmd.marker_path(CONTAINER_NOTEBOOK_ROOT)


def _container_reads_marker() -> str:
    return f"docker exec \"$cid\" cat {shlex.quote(_container_marker())}"


def _container_lookup(s: Settings, wait: bool) -> str:
    """Sets $cid when exactly one running container matches remote.container_filter ($count says how many)
    and, when waiting, $addr and $have_image; the wait for one with an address is bounded by
    remote.container_wait. The nginx phase starts from the container the mount phase of the same run found (a
    restart keeps its id), so it asks docker once, not three times; a container gone since is looked up again."""
    # Counted by the shell, not grep: each program started counts when many instances converge at once.
    find = (f"cids={_output(sh(*cmd.find_container(s.remote.container_filter)))} || true; count=0; cid=''; "
            "for found in $cids; do count=$((count + 1)); cid=$found; done; if [ \"$count\" != 1 ]; then cid=''; fi")
    if not wait:
        return find
    return "\n".join([
        f"cid=${{cid:-}}; count=${{count:-0}}; addr=''; have_image=''; have_limits=''; ipv4={shlex.quote(cmd.IPV4)}",
        f"for ((waited = 0; waited < {int(s.remote.container_wait)}; waited++)); do",
        f"    if [ -z \"$cid\" ]; then {find}; fi",
        "    if [ -n \"$cid\" ]; then",
        f"        inspected={_output(sh(*cmd.container_inspection(Var('cid'))))} || inspected=''",
        # The limits step compares $have_limits: one docker inspect for both.
        "        # shellcheck disable=SC2034  # have_image: read by the image check when the deployed image is known",
        "        if [ -z \"$inspected\" ]; then cid='' have_image='' addr='' have_limits=''",
        "        else read -r have_image have_memory have_swap have_pids addr <<<\"$inspected\" || true; have_limits=\"$have_memory $have_swap $have_pids\"; fi",
        "    fi",
        "    if [[ $addr =~ $ipv4 ]]; then break; fi",
        "    sleep 1",
        "done",
    ])


def _not_one_container(s: Settings, step: str) -> str:
    """Fails when more than one container matches: which one gets traffic would be a guess."""
    # Our own shell text inside the message: its braces are not format slots.
    listing = f"$({sh(*cmd.list_containers(s.remote.container_filter))} 2>&1 || true)".replace("{", "{{").replace("}", "}}")
    return ("if [ \"$count\" -gt 1 ]; then " + _fail(
        step, "$count running containers match {filter}, expected exactly one: " + listing,
        filter=s.remote.container_filter) + "; fi")


def _image_check(image_uri: str) -> str:
    """Fails when the container runs another image than the one the deployed version names (compared by
    image id, when that image is on the instance)."""
    if not image_uri:
        return "image_note=' (deployed image not known here: not compared)'"
    want = f"$({sh(*cmd.image_id(image_uri))} 2>/dev/null || true)"
    return "\n".join([
        f"want_image={want}",
        "if [ -z \"$want_image\" ]; then image_note=" + _dq(" (image {uri} not on this instance: not compared)", uri=image_uri),
        "elif [ \"$have_image\" != \"$want_image\" ]; then " + _fail(
            "container", "running container $cid is image $have_image, the deployed version names {uri} ($want_image)",
            uri=image_uri),
        "else image_note=" + _dq(" runs {uri}", uri=image_uri),
        "fi",
    ])


# --- nginx phase ---------------------------------------------------------------------------------------


def nginx_steps(s: Settings, facts, templates: Templates = Templates()) -> list[ScriptStep]:
    mp = s.efs.mount_point
    vid = volume_id(s, facts)
    files = servers_files(s, ADDRESS_PLACEHOLDER, templates)
    paths = " ".join(shlex.quote(path) for path in files)
    vhosts = " ".join(shlex.quote(f"{cmd.NGINX_CONF_DIR}/{name}") for name in bundle_nginx_files(s, templates))
    stage = []
    for content in files.values():
        # $addr passed the IPv4 check before it is put into the file.
        stage.append(f"servers_text={shlex.quote(content)}")
        stage.append(f'new_texts+=("${{servers_text//{ADDRESS_PLACEHOLDER}/$addr}}")')
    marker = cmd.marker_path(mp)
    return [
        ScriptStep("Refuse to send traffic to notebooks on the instance's own disk.", "\n".join([
            f"marker=''; {sh(*cmd.read_marker('marker', mp))}",
            f"if {{ [ \"${{volume_ready:-}}\" != 1 ] && ! {sh(*cmd.is_mounted(mp))}; }} || [ \"$marker\" != {shlex.quote(vid)} ]; then",
            "    " + _fail("volume", "{mp} is not the shared volume {vid} (not mounted, or {marker} missing); nginx left as it was. Run inv mount-efs first", mp=mp, vid=vid, marker=marker),
            "fi",
            _report("volume", "ok", "{mp} holds {vid}", mp=mp, vid=vid),
        ])),
        ScriptStep(f"Find the app container (waiting up to {s.remote.container_wait}s) and check it sees the volume.", "\n".join([
            _container_lookup(s, wait=True),
            _not_one_container(s, "container"),
            "if [ -z \"$cid\" ]; then " + _fail("container", "no running container matched {filter} within {wait}s; check docker ps -a and the app's logs", filter=s.remote.container_filter, wait=s.remote.container_wait),
            "elif ! [[ $addr =~ $ipv4 ]]; then " + _fail("container", "docker inspect gave no IPv4 address for container $cid (got: $addr)"),
            "fi",
            f"if [ \"${{container_sees:-}}\" != \"$cid\" ] && [ \"{_output(_container_reads_marker())}\" != {shlex.quote(vid)} ]; then",
            "    " + _fail("container", "container $cid does not see {vid} at its notebook root (it would write to the instance's disk); nginx left as it was. Run inv mount-efs, which restarts it", vid=vid),
            "fi",
            _image_check(getattr(facts, "image_uri", "")),
            _report("container", "ok", "container $cid at $addr$image_note"),
        ])),
        ScriptStep("Write the upstreams' servers files (the vhosts come with the bundle); nginx -t, then reload. "
                   "On failure restore the previous files.", "\n".join([
            f"for vhost in {vhosts}; do",
            "    if [ ! -e \"$vhost\" ]; then " + _fail("nginx", "$vhost is missing: the vhosts come with the bundle (.platform/nginx/conf.d); deploy it (inv deploy) before converging") + "; fi",
            "done",
            f"if [ ! -d {shlex.quote(HEALTHD_LOG_DIR)} ] || [ ! -d {shlex.quote(SERVERS_DIR)} ]; then "
            f"mkdir -p {shlex.quote(HEALTHD_LOG_DIR)} {shlex.quote(SERVERS_DIR)}; fi",
            # Compared, kept and restored in the shell's own variables (builtins, no temporary files): each program
            # started counts when many instances converge at once. A file is rewritten in place, keeping its mode.
            f"paths=({paths}); new_texts=(); old_texts=(); had=(); changed=()",
            *stage,
            "for i in \"${!paths[@]}\"; do",
            "    had[i]=0; old_texts[i]=''; old_text=''",
            "    if [ -e \"${paths[i]}\" ]; then had[i]=1; read_file old_text \"${paths[i]}\"; old_texts[i]=$old_text; fi",
            "    if [ \"${had[i]}\" = 0 ] || [ \"${old_texts[i]}\" != \"${new_texts[i]}\" ]; then changed+=(\"$i\"); fi",
            "done",
            "if [ ${#changed[@]} -eq 0 ]; then",
            "    " + _report("nginx", "ok", "files unchanged (upstream $addr); not reloaded"),
            "else",
            "    changed_list=''",
            "    for i in \"${changed[@]}\"; do",
            "        printf %s \"${new_texts[i]}\" > \"${paths[i]}\"",
            "        changed_list+=\"${changed_list:+ }${paths[i]}\"",
            "    done",
            f"    if ! nginx_output=$({sh(*cmd.nginx_test())} 2>&1); then",
            "        for i in \"${changed[@]}\"; do",
            "            if [ \"${had[i]}\" = 1 ]; then printf %s \"${old_texts[i]}\" > \"${paths[i]}\"; else rm -f \"${paths[i]}\"; fi",
            "        done",
            "        " + _fail("nginx", "nginx -t rejected the new files; previous files restored, nginx still serves the old configuration: $nginx_output"),
            "    fi",
            *("    " + line for line in nginx_reload_lines()),
            # A reload is graceful: until an old worker is told to shut down it still accepts connections with the
            # old servers. Wait (bounded) for that; its open connections (kernel websockets) may go on.
            "    for ((tries = 0; tries < 50; tries++)); do",
            "        serving_old=''",
            "        for pid in $old_workers; do",
            "            if [ -r \"/proc/$pid/cmdline\" ]; then title=''; read_file title \"/proc/$pid/cmdline\"",
            "                if [[ $title != *'shutting down'* ]]; then serving_old=$pid; fi",
            "            fi",
            "        done",
            "        if [ -z \"$serving_old\" ]; then break; fi",
            "        sleep 0.1",
            "    done",
            # nginx -s reload only signals the master: wait (bounded) until it listens on both ports.
            f"    for port in {' '.join(str(getattr(s.ports, svc)) for svc in ('sifu', 'jupyter'))}; do",
            "        for ((tries = 0; tries < 50; tries++)); do",
            "            if (exec 3<>\"/dev/tcp/127.0.0.1/$port\") 2>/dev/null; then break; fi",
            "            sleep 0.1",
            "        done",
            "        if ! (exec 3<>\"/dev/tcp/127.0.0.1/$port\") 2>/dev/null; then",
            "            " + _fail("nginx", "nginx reloaded but does not listen on port $port after 5s; see /var/log/nginx/error.log"),
            "        fi",
            "    done",
            "    " + _report("nginx", "changed", "wrote $changed_list (upstream $addr); reloaded"),
            "fi",
        ])),
        _limits_step(s),
    ]


def nginx_reload_lines() -> list[str]:
    """Shell that reloads nginx and sets $old_workers (the workers from before, which the caller waits for).

    nginx -s reload parses the whole configuration to find the master's pid file, then sends it SIGHUP. When the
    old workers have exactly one parent and its title says it is nginx's master, bash's own kill sends that signal:
    one nginx start less per instance. Otherwise (no workers, two masters) nginx -s reload, as before."""
    return [
        # Anchored: this script's own bash (and sudo) carry its text, this pattern included, in their command lines.
        "old_workers=$(exec pgrep -f '^nginx: worker process') || true",
        "nginx_masters=''",
        "for pid in $old_workers; do",
        "    worker_parent=''; { read -r _ _ _ worker_parent _ < \"/proc/$pid/stat\"; } 2>/dev/null || continue",
        "    if [[ \" $nginx_masters \" != *\" $worker_parent \"* ]]; then nginx_masters+=\"${nginx_masters:+ }$worker_parent\"; fi",
        "done",
        "master_title=''; if [[ $nginx_masters =~ ^[0-9]+$ ]]; then read_file master_title \"/proc/$nginx_masters/cmdline\"; fi",
        "if [[ $master_title == 'nginx: master process'* ]] && kill -HUP \"$nginx_masters\" 2>/dev/null; then :",
        f"elif ! nginx_output=$({sh(*cmd.nginx_reload())} 2>&1); then",
        "    " + _fail("nginx", "nginx -s reload failed (is nginx running?): $nginx_output"),
        "fi",
    ]


def _limits_step(s: Settings) -> ScriptStep:
    """The app container's memory and process limits (issue 13): Dockerrun.aws.json v1 cannot set them
    (DOCKERRUN-V1-NO-LIMITS), so converge does, with docker update, only when docker inspect differs.
    Last in the phase: nginx already sends traffic to the container when this fails."""
    pids = int(s.remote.container_pids_limit)
    if s.remote.container_memory_mb:
        memory = [f"memory_mib={int(s.remote.container_memory_mb)}"]
    else:
        reserve = int(s.remote.host_memory_reserve_mb)
        # MemTotal read by bash (no awk): "MemTotal:  N kB".
        memory = ["memory_kib=0; while read -r meminfo_key meminfo_value _; do "
                  "if [ \"$meminfo_key\" = MemTotal: ]; then memory_kib=$meminfo_value; break; fi; done < /proc/meminfo",
                  f"memory_mib=$(( memory_kib / 1024 - {reserve} ))",
                  f"if [ \"$memory_mib\" -lt {MIN_CONTAINER_MEMORY_MB} ]; then " + _fail(
                      "limits", "the instance leaves the app container $memory_mib MiB after the {reserve} MiB reserve; "
                      "lower remote.host_memory_reserve_mb or set remote.container_memory_mb", reserve=str(reserve)) + "; fi"]
    return ScriptStep(f"Limit the app container's memory and processes ({pids}) with docker update when they differ.", "\n".join([
        *memory,
        "memory_bytes=$((memory_mib * 1048576))",
        f"want_limits=\"$memory_bytes $memory_bytes {pids}\"",
        # Read by the container step's docker inspect of the same run (the container must be the same one).
        f"if [ -z \"${{have_limits:-}}\" ]; then have_limits={_output(sh(*cmd.container_limits(Var('cid'))), '2>&1')} || true; fi",
        "if [ \"$have_limits\" = \"$want_limits\" ]; then "
        + _report("limits", "ok", "container $cid already has memory $memory_mib MiB, {pids} processes", pids=str(pids)),
        f"elif limits_output=$({sh(*cmd.limit_container(Var('cid'), Var('memory_bytes'), pids))} 2>&1); then "
        + _report("limits", "changed", "container $cid: memory $memory_mib MiB, {pids} processes (was: $have_limits)",
                  pids=str(pids)),
        "else " + _fail("limits", "docker update of container $cid failed: $limits_output"),
        "fi",
    ]))


def converge_steps(s: Settings, facts, access: cmd.S3Access | None = None, templates: Templates = Templates()) -> list[ScriptStep]:
    """Every step of both phases, mount first."""
    return mount_steps(s, facts, access) + nginx_steps(s, facts, templates)


def script_context(s: Settings, facts, access: cmd.S3Access | None = None, templates: Templates = Templates()) -> dict:
    """The context of .platform/converge.sh.j2."""
    return {"steps": converge_steps(s, facts, access, templates), "report_prefix": REPORT_PREFIX}


def converge_script(s: Settings, facts, access: cmd.S3Access | None = None, templates: Templates = Templates()) -> str:
    """The whole script, byte for byte what the .platform hook holds for the same settings."""
    return render_template(".platform/converge.sh.j2", script_context(s, facts, access, templates))
