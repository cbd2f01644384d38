"""Developer tasks: the test suite, benchmarks, the dependency lock."""

from invoke import Collection, task

from deployer import REPO_ROOT

SYSTEM_PACKAGES_FILE = REPO_ROOT / "tests" / "system-packages.txt"


def system_packages() -> list[str]:
    names = []
    for line in SYSTEM_PACKAGES_FILE.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def ensure_system_packages(c) -> None:
    """Install the Debian packages the tests need; already installed ones are left alone."""
    import os
    import shlex
    import shutil

    wanted = system_packages()
    if not shutil.which("dpkg-query"):
        print(f"not Debian: make sure these are installed: {' '.join(wanted)}")
        return
    result = c.run(shlex.join(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\\n", *wanted]), hide=True, warn=True)
    installed = {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}
    missing = [name for name in wanted if name not in installed]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"the tests need these Debian packages: {' '.join(missing)}; install them (as root) or run ./inv test as root")
    print(f"installing Debian packages for the tests: {' '.join(missing)}", flush=True)
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    c.run(shlex.join([*apt, "update", "-q"]), env=env, hide="out")
    c.run(shlex.join([*apt, "install", "-y", "-q", "--no-install-recommends", *missing]), env=env, hide="out")


@task(help={"k": "only tests matching this pytest -k expression", "path": "test path (default: tests)",
            "skip_system": "do not install Debian packages"})
def test(c, k=None, path="tests", skip_system=False):
    """Run the whole test suite: unit, integration (real nginx, dockerd, sshd, moto...) and end to end.

    Installs the Debian packages the tests need (as root) and lets the tests start their own
    services on free ports; everything started is stopped again.
    """
    import shlex
    import sys

    if not skip_system:
        ensure_system_packages(c)
    args = [sys.executable, "-m", "pytest", path, "--durations=15"]
    if k:
        args += ["-k", k]
    c.run(shlex.join(args), pty=False, env={"PYTHONUNBUFFERED": "1"})


@task(help={"name": "one benchmark, e.g. cli_list (default: all in bench/)"})
def bench(c, name=None):
    """Run the benchmarks in bench/ and append their results to bench/RESULTS.md."""
    import shlex
    import sys

    scripts = sorted(p for p in (REPO_ROOT / "bench").glob("*.py") if p.stem not in ("__init__", "record"))
    if name:
        scripts = [p for p in scripts if p.stem == name]
        if not scripts:
            raise SystemExit(f"no benchmark named {name!r} in bench/")
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        c.run(shlex.join([sys.executable, str(script)]), pty=False)


@task
def lock(c):
    """Regenerate constraints.txt from a fresh virtualenv with the newest allowed versions."""
    import shlex
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        c.run(shlex.join([sys.executable, "-m", "venv", tmp]))
        c.run(shlex.join([f"{tmp}/bin/pip", "install", "-q", f"{REPO_ROOT}[sifu,test]"]))
        frozen = c.run(shlex.join([f"{tmp}/bin/pip", "freeze", "--exclude", "sifu-notebooks"]), hide=True).stdout
    header = "# Pinned versions of every Python dependency (pip freeze of a fresh .venv). Regenerate: ./inv lock\n"
    (REPO_ROOT / "constraints.txt").write_text(header + frozen)
    print("constraints.txt updated")


ns = Collection(test, bench, lock)
