"""Profile of converge on one fresh test host: where the instance's CPU goes, and how many SSH round trips.

Run as root:  ./inv bench --name converge_profile   (or python bench/converge_profile.py); appends to bench/RESULTS.md.
On a fresh host (as bench/converge.py measures): the converge script under `strace -f -e execve` counts every
program it starts; the same script without strace gives the CPU of bash and its children (getrusage) and of
nginx's master (its reload, which is not our child); each program's own CPU per call is then measured alone on
the host, 20 calls each. SSH: channels and exec requests per host, counted in paramiko, for one converge.
"""

from __future__ import annotations

import collections
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.record import record  # noqa: E402

CALLS = 20


def _cpu_of_pid(host, pid: str) -> float:
    fields = host.read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Runs argv and prints its wall time and the CPU (user+sys) of it and all its children: getrusage is exact to
# the microsecond, where /usr/bin/time prints hundredths.
_RUSAGE = ("import resource, subprocess, sys, time; t = time.monotonic(); "
           "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
           "r = resource.getrusage(resource.RUSAGE_CHILDREN); print(time.monotonic() - t, r.ru_utime + r.ru_stime)")


def _timed(host, script: str) -> tuple[float, float]:
    """(wall, CPU user+sys of bash and its children) of a bash script run on the host."""
    out = host.run(f"python3 -c {_quote(_RUSAGE)} bash -c {_quote(script)}", check=False).stdout.split()
    return float(out[0]), float(out[1])


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _programs(trace_files) -> tuple[collections.Counter, int]:
    """(programs started, by name; processes forked) from strace -ff files of execve and clone calls."""
    traced = "\n".join(part.read_text() for part in trace_files).splitlines()
    programs: collections.Counter = collections.Counter()
    # Processes: each fork (a subshell, or the child a program is started in), the script's own bash included.
    forks = sum(1 for line in traced if re.search(r"\b(clone3?|v?fork)\(.*= \d+$", line))
    for line in traced:
        found = re.search(r'execve\("([^"]+)", \[("[^"]*")?(?:, "([^"]*)")?', line)
        if found and "= 0" in line:
            name = found.group(1).rsplit("/", 1)[-1]
            if name == "docker" and found.group(3):
                name = f"docker {found.group(3)}"
            programs[name] += 1
    return programs, forks


def main() -> int:
    if os.geteuid() != 0:
        print("converge profile skipped: it needs root")
        return 0
    from deployer import render
    from deployer.remote import commands, executor, hooks
    from tests.support.hosts import APP_LABEL, EFS_ADDRESS, TestBed

    load_before = os.getloadavg()[0]
    lines: list[str] = []
    say = lines.append
    with TestBed(1) as bed:
        s, _ = bed.settings()
        host = bed.hosts[0]
        script_path = bed.dir / "converge.sh"
        script_path.write_text(hooks.converge_script(s, render.Facts(offline=False)))

        # 1. Which programs one converge starts: on a fresh host, then again with nothing to change.
        host.reset()
        bed.deploy_bundle(host)
        for run, what in enumerate(("fresh host", "again, nothing to change")):
            trace = bed.dir / f"trace-{run}"
            # One file per process (-ff): no call is split into "unfinished" and "resumed" lines, as it is in one file
            # when processes run at once (a pipeline's programs went uncounted so).
            host.run(f"strace -ff -qq -e trace=execve,clone,clone3,fork,vfork -e signal=none -o {trace} "
                     f"bash {script_path} mount nginx", check=False)
            programs, forks = _programs(bed.dir.glob(f"trace-{run}.*"))
            say(f"programs started by one converge ({what}): {sum(programs.values())}; processes forked: {forks}")
            for name, count in programs.most_common():
                say(f"  {count:3d}  {name}")

        # 2. CPU of the whole converge (fresh host), and of nginx's master.
        for attempt in range(3):
            host.reset()
            bed.deploy_bundle(host)
            master = host.read("/run/nginx.pid").strip()
            before = _cpu_of_pid(host, master)
            wall, cpu = _timed(host, f"bash {script_path} mount nginx")
            say(f"converge on the host (fresh), run {attempt + 1}: wall {wall:.2f}s, CPU of bash+children {cpu * 1000:.1f} ms, "
                  f"nginx master {_cpu_of_pid(host, master) - before:.3f}s")
        wall, cpu = _timed(host, f"for i in $(seq {CALLS}); do bash {script_path} mount nginx; done")
        say(f"converge again (nothing to change), {CALLS} runs: wall {wall / CALLS:.3f}s, CPU {cpu / CALLS * 1000:.1f} ms each")

        # 3. Each program alone, CPU per call (the converged host).
        cid = host.read(str(host.root / "container" / "id")).strip()
        alone = {
            "docker ps (stand-in)": " ".join(commands.find_container(f"label={APP_LABEL}")),
            "docker inspect (stand-in)": f"docker inspect -f '{{{{.Image}}}}' {cid}",
            "docker exec cat (stand-in)": f"docker exec {cid} cat /notebooks/.sifu-volume",
            "nfs-ls (the mount stand-in's check)": f"nfs-ls 'nfs://{EFS_ADDRESS}/?version=4'",
            "nginx -t": "nginx -t 2>/dev/null",
            "mountpoint -q": f"mountpoint -q {bed.mount_point}",
            "grep -c": "grep -c . /etc/hostname",
        }
        say(f"CPU per call, {CALLS} calls each, on the host:")
        for what, line in alone.items():
            wall, cpu = _timed(host, f"for i in $(seq {CALLS}); do {line} >/dev/null 2>&1 || true; done")
            say(f"  {what:30} {cpu / CALLS * 1000:6.1f} ms CPU, {wall / CALLS * 1000:6.1f} ms wall")
        master = host.read("/run/nginx.pid").strip()
        before = _cpu_of_pid(host, master)
        wall, cpu = _timed(host, "nginx -s reload; sleep 1")
        say(f"  nginx -s reload: master {(_cpu_of_pid(host, master) - before) * 1000:.0f} ms CPU, the signal {cpu * 1000:.0f} ms")

        # 4. SSH: what one converge costs in round trips (paramiko channels and exec requests), fresh host.
        import paramiko

        counts = collections.Counter()
        opened, execs = paramiko.Transport.open_session, paramiko.Channel.exec_command

        def open_session(self, *a, **k):
            counts["sessions"] += 1
            return opened(self, *a, **k)

        def exec_command(self, *a, **k):
            counts["exec requests"] += 1
            return execs(self, *a, **k)

        paramiko.Transport.open_session, paramiko.Channel.exec_command = open_session, exec_command
        host.reset()
        bed.deploy_bundle(host)
        result = executor.converge([host.address], s, render.Facts(offline=False))
        say(f"SSH per host for one converge: {dict(counts)}; changed: {result.hosts[0].changed}; "
              f"{result.seconds:.2f}s")
        paramiko.Transport.open_session, paramiko.Channel.exec_command = opened, execs
    record("converge profile: one fresh host (bench/converge_profile.py)",
           [f"Load average {load_before:.1f} when it started, {os.getloadavg()[0]:.1f} when it ended (1 min; the 2 cores "
            "are shared with other work). CPU: getrusage of the script and its children.", "",
            "```", *lines, "```"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
