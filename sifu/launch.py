"""`python -m sifu.launch {sifu|jupyter|kernel-broker} [--user NAME] [--sifu-url URL] -- COMMAND...`: start one of the
container's programs with only what it needs (supervisord runs both through this).

supervisord hands every program its whole environment: SIFU_SECRET_KEY, the OAuth2 client secret, RDS_*.
Jupyter, and every kernel it starts, must hold none of them: a notebook cell can read os.environ and
/proc/<pid>/environ of its own user's processes. So each program's environment is built from an allow-list;
Jupyter gets the public half of the identity key (SIFU_IDENTITY_PUBLIC_KEY, derived here from
SIFU_SECRET_KEY) and Sifu's loopback address (SIFU_INTERNAL_URL) instead of any secret. Started as root
(the container), it also becomes the program's own service user before exec, with an empty capability bounding
set (sifu/confine.py); unprivileged (process-mode local runs), it keeps the current user.
The kernel broker (root, it stays root) goes through here too, for its environment alone: it needs no secret.
Then it execs, so nothing of this process or its environment stays.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from typing import Mapping

from sifu.confine import ConfineError, parse_with_command, shed_capabilities

# What any Python program here needs from the environment, and nothing else.
COMMON = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
          "PYTHONUNBUFFERED", "PYTHONNOUSERSITE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "HOME", "TMPDIR")
# Sifu's own settings and secrets (sifu/config.py).
SIFU_PREFIXES = ("SIFU_", "EDX_", "RDS_")
SIFU_NAMES = ("FORWARDED_ALLOW_IPS",)
# Jupyter's: site values for tornado_settings and the revocation cache (sifu/jupyter.py), Jupyter's own paths.
JUPYTER_NAMES = ("SIFU_FRAME_ANCESTORS", "SIFU_COOKIE_SECURE", "SIFU_REVOCATION_CACHE_SECONDS", "IPYTHONDIR")
JUPYTER_PREFIXES = ("JUPYTER_",)
# A student's kernel: locale, PATH and the venv; nothing of Sifu's or Jupyter's (sifu.jupyter.SifuSessionManager).
KERNEL_NAMES = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "PYTHONUNBUFFERED",
                "PYTHONDONTWRITEBYTECODE", "PYTHONNOUSERSITE", "SSL_CERT_FILE", "HOME", "TMPDIR")


# Files Jupyter and the kernels write in a student's folder stay readable and writable by Sifu's group (and
# nobody else); Sifu sets the modes of what it writes itself (sifu/storage.py).
UMASKS = {"sifu": 0o022, "jupyter": 0o007, "kernel-broker": 0o022}
PROGRAMS = tuple(UMASKS)


class LaunchError(Exception):
    """The program cannot be started safely; the message says why."""


def _pick(env: Mapping[str, str], names: tuple[str, ...], prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in names or k.startswith(prefixes)}


def program_environment(program: str, env: Mapping[str, str], sifu_url: str = "") -> dict[str, str]:
    """The environment `program` runs with, from supervisord's `env`."""
    if program == "sifu":
        return _pick(env, COMMON + SIFU_NAMES, SIFU_PREFIXES)
    if program == "kernel-broker":  # root: its settings are its arguments; kernels get the allow-list of Jupyter's
        return _pick(env, COMMON)
    if program == "jupyter":
        secret = env.get("SIFU_SECRET_KEY", "")
        if len(secret) < 32:
            raise LaunchError("SIFU_SECRET_KEY is missing or shorter than 32 characters: Jupyter's public key derives from it")
        if not sifu_url:
            raise LaunchError("--sifu-url is required for jupyter: it asks Sifu whether an identity's token is active")
        from sifu import signing  # cryptography: imported only where the public key is derived

        return _pick(env, COMMON + JUPYTER_NAMES, JUPYTER_PREFIXES) | {
            signing.PUBLIC_KEY_VARIABLE: signing.public_key_text(secret.encode()),
            "SIFU_INTERNAL_URL": sifu_url,
        }
    raise LaunchError(f"unknown program {program!r}: one of {', '.join(PROGRAMS)}")


def kernel_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment a student's kernel starts with, from Jupyter's `env`."""
    return _pick(env, KERNEL_NAMES)


def become(user: str, env: dict[str, str]) -> None:
    """As root: drop to `user` (its groups only) and point HOME at its home. Unprivileged: nothing changes."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise LaunchError(f"there is no user {user!r} in this image") from None
    if entry.pw_uid == 0:
        raise LaunchError(f"{user!r} is root: each program runs as its own unprivileged user")
    shed_capabilities()
    os.initgroups(user, entry.pw_gid)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    env["HOME"] = entry.pw_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sifu.launch", description=__doc__.splitlines()[0])
    parser.add_argument("program", choices=PROGRAMS)
    parser.add_argument("--user", help="the service user to run as when started as root")
    parser.add_argument("--sifu-url", default="", help="Sifu's loopback address, for Jupyter's revocation check")
    args, command = parse_with_command(parser, argv)
    try:
        env = program_environment(args.program, os.environ, args.sifu_url)
        if args.user:
            become(args.user, env)
    except (LaunchError, ConfineError, OSError) as exc:  # OSError: a uid or group change refused
        print(f"sifu.launch: cannot start {args.program}: {exc}", file=sys.stderr)
        return 2
    os.umask(UMASKS[args.program])
    os.execvpe(command[0], command, env)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
