"""A local Debian base image (`localbase:bookworm`) for image builds, since no registry can be pulled from.

debootstrap builds a minimal bookworm root file system with Python, from the mirror the machine's
apt sources already use. The host's CA bundle (and any extra CAs) is copied in, because outgoing
HTTPS here is intercepted by a CA only the host trusts: without it `pip install` in a build fails.

The root file system is cached as a tarball keyed by everything that goes into it (suite, package
list, CA files), so only the first run on a machine pays for debootstrap (25-50 s); later runs
import the tarball into the session's engine in about 2 s.

It stands in for the official `python:*-slim-bookworm` image: Debian bookworm with CPython built
from source under /usr/local, `useradd` (package passwd). Debian's own python3 is 3.11.2, too old
for our pins (soupsieve needs >= 3.11.5), so the CPython the tests run on (pyenv's, on our machines)
is copied to /usr/local, as the official image has it; Debian's python3 packages supply the shared
libraries it links against (libssl, libffi, libsqlite3, ...). The tests and `inv sandbox` build on it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = "bookworm"
IMAGE = "localbase:bookworm"
# What the official slim Python image has that minbase lacks (passwd: useradd for our non-root user).
PACKAGES = ("python3", "python3-pip", "python3-venv", "ca-certificates", "passwd")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
CA_ENV = {
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
    "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt",
}
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def cache_dir() -> Path:
    """Where the rootfs tarball is kept between runs: $SIFU_TEST_CACHE or /var/cache/sifu-tests."""
    path = Path(os.environ.get("SIFU_TEST_CACHE") or "/var/cache/sifu-tests")
    path.mkdir(parents=True, exist_ok=True)
    return path


def apt_mirror(sources: list[Path] | None = None) -> str:
    """The Debian mirror the machine's apt uses for the main archive (not -security), one-line or deb822."""
    if sources is None:
        sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(
                    (key.strip().lower(), value.strip())
                    for key, _, value in (line.partition(":") for line in stanza.splitlines() if line and not line.startswith("#"))
                )
                if "deb" in fields.get("types", "").split() and SUITE in fields.get("suites", "").split():
                    return fields["uris"].split()[0].rstrip("/")
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                    return parts[1].rstrip("/")
    return DEFAULT_MIRROR


def _ca_files() -> list[Path]:
    files = [HOST_CA_BUNDLE] if HOST_CA_BUNDLE.is_file() else []
    if HOST_EXTRA_CAS.is_dir():
        files += sorted(p for p in HOST_EXTRA_CAS.rglob("*") if p.is_file())
    return files


def host_cpython() -> Path | None:
    """The prefix of the CPython running the tests, when it is not Debian's own (/usr)."""
    prefix = Path(sys.base_prefix)
    if prefix == Path("/usr") or not (prefix / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}").exists():
        return None
    return prefix


_SKIP_STDLIB = {"__pycache__", "test", "idlelib", "tkinter", "turtledemo", "site-packages"}


def _copy_cpython(prefix: Path, rootfs: Path) -> None:
    """Copy a CPython installation to rootfs/usr/local (stdlib, shared library, headers, the interpreter)."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    local = rootfs / "usr" / "local"
    for name in (f"python{version}", f"libpython{version}.so.1.0", "libpython3.so"):
        source = prefix / "lib" / name
        if source.is_dir():
            shutil.copytree(source, local / "lib" / name, symlinks=True, dirs_exist_ok=True,
                            ignore=lambda directory, names: [n for n in names if n in _SKIP_STDLIB])
            (local / "lib" / name / "site-packages").mkdir(exist_ok=True)
        elif source.exists():
            shutil.copy2(source, local / "lib" / name)
    if (local / "lib" / f"libpython{version}.so.1.0").exists():
        os.symlink(f"libpython{version}.so.1.0", local / "lib" / f"libpython{version}.so")
    if (prefix / "include").is_dir():
        shutil.copytree(prefix / "include", local / "include", dirs_exist_ok=True)
    shutil.copy2(prefix / "bin" / f"python{version}", local / "bin" / f"python{version}")
    for alias in ("python3", "python"):
        os.symlink(f"python{version}", local / "bin" / alias)
    subprocess.run(["chroot", str(rootfs), "ldconfig"], check=True)
    check = subprocess.run(["chroot", str(rootfs), "/usr/local/bin/python3", "-c", "import ssl, sqlite3, ctypes, venv"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"the copied CPython does not run inside the rootfs:\n{check.stderr}")


def cache_key() -> str:
    digest = hashlib.sha256()
    digest.update(f"{SUITE}\0minbase\0{','.join(sorted(PACKAGES))}\0".encode())
    cpython = host_cpython()
    digest.update(f"{cpython}\0{sys.version}\0".encode())
    for path in _ca_files():
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def rootfs_tarball() -> Path:
    """The cached rootfs tarball, built with debootstrap if missing (one builder at a time per machine)."""
    cache = cache_dir()
    tarball = cache / f"rootfs-{SUITE}-{cache_key()}.tar"
    if tarball.exists():
        return tarball
    with open(cache / "rootfs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building the same tarball
        if tarball.exists():
            return tarball
        if not shutil.which("debootstrap"):
            raise RuntimeError("debootstrap is missing: apt-get install debootstrap (listed in tests/system-packages.txt)")
        with tempfile.TemporaryDirectory(prefix="sifu-rootfs-", dir=cache) as tmp:
            rootfs = Path(tmp) / "rootfs"
            started = time.monotonic()
            result = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), apt_mirror()],
                capture_output=True, text=True,
            )
            if result.returncode != 0:
                raise RuntimeError(f"debootstrap failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
            _add_ca_files(rootfs)
            cpython = host_cpython()
            if cpython:
                _copy_cpython(cpython, rootfs)
            # Downloaded .debs and package lists only make the image bigger.
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (rootfs / leftover).glob("*"):
                    if path.is_file():
                        path.unlink()
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
            for stale in cache.glob(f"rootfs-{SUITE}-*.tar*"):
                if not stale.name.startswith(tarball.name):
                    stale.unlink()  # an older package list or CA bundle
            (cache / f"{tarball.name}.seconds").write_text(f"{time.monotonic() - started:.1f}\n")
    return tarball


def _add_ca_files(rootfs: Path) -> None:
    if HOST_CA_BUNDLE.is_file():
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    if HOST_EXTRA_CAS.is_dir():
        target = rootfs / "usr/local/share/ca-certificates"
        target.mkdir(parents=True, exist_ok=True)
        for path in HOST_EXTRA_CAS.rglob("*"):
            if path.is_file():
                dest = target / path.relative_to(HOST_EXTRA_CAS)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)


def import_base(client, tag: str = IMAGE) -> str:
    """Import the cached rootfs into the engine as `tag` (skipped when that exact rootfs is already there)."""
    tarball = rootfs_tarball()
    key = cache_key()
    try:
        existing = client.images.get(tag)
        if existing.labels.get("sifu.test.rootfs") == key:
            return existing.id
    except Exception:  # docker.errors.ImageNotFound; docker is imported lazily
        pass
    repository, _, version = tag.partition(":")
    changes = ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8"]
    changes += [f"ENV {name}={value}" for name, value in CA_ENV.items()]
    changes += [f"LABEL sifu.test.rootfs={key}", 'CMD ["/bin/bash"]']
    client.api.import_image_from_file(str(tarball), repository=repository, tag=version or "latest", changes=changes)
    return client.images.get(tag).id
