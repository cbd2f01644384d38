"""Run moto's server with our faithful Elastic Beanstalk: ``python -m tests.support.moto_eb_server --port P``.

Arguments are moto's own (``-H/--host``, ``-p/--port``). The extension must be imported in the serving
process, which is why this launcher exists instead of calling ``moto_server`` directly.
"""

import sys

from moto.server import main as moto_main

from tests.support import moto_eb


def main(argv: list[str] | None = None) -> None:
    moto_eb.install()
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
