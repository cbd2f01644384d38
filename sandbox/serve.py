"""The serving process: moto's server with the sandbox's Elastic Beanstalk, ECR endpoint and control endpoint.

``python -m sandbox.serve --host H --port P`` (moto's own arguments). The extensions patch moto's classes, so they
must be installed in the process that serves; sandbox/server.py starts this process and talks to it.
"""

import sys

from moto.server import main as moto_main

from sandbox import control, ecr, handlers, iam


def install() -> None:
    handlers.install()
    ecr.install()
    control.install()
    iam.install()


def main(argv: list[str] | None = None) -> None:
    install()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
