"""How `python -m sifu` serves: uvicorn in its own process, or in workers forked by gunicorn's master.

- One worker (`sifu.workers: 1`, the default): uvicorn serves in `python -m sifu`'s own process. gunicorn's
  master would add a second Python process (about 40 MiB PSS, and gunicorn's imports at every start) only to
  supervise one worker, which supervisord already does: it restarts Sifu when it exits.
- More: gunicorn's master preloads the app and forks the workers (sifu/workers.py).

Both run uvicorn with the same options, and both redact tokens from access lines.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Callable

GRACEFUL_SECONDS = 10
KEEPALIVE_SECONDS = 5  # uvicorn's own default (gunicorn's is 2 s): nginx keeps idle upstream connections open

# uvicorn's options on both paths. No websocket protocol: Sifu has no websocket route, and uvicorn's default
# imports the websockets library at start (an upgrade request is answered as plain HTTP).
UVICORN_OPTIONS = {"factory": True, "proxy_headers": True, "ws": "none",
                   "timeout_graceful_shutdown": GRACEFUL_SECONDS}


class RedactTokens(logging.Filter):
    """Access-log lines must not carry tokens: serve URLs hold `?Authorization=Bearer T`."""

    _query_token = re.compile(r"(Authorization=)[^&\s]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = self._query_token.sub(r"\1[redacted]", args[2])
            record.args = tuple(args)
        return True


def redact_access_log() -> None:
    """uvicorn's access logger (the line `client - "GET path HTTP/1.1" status`) redacts tokens, once."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())


def serve_in_this_process(factory: Callable[[], Any], host: str, port: int) -> None:
    """uvicorn in this process until SIGTERM (graceful: in-flight requests get GRACEFUL_SECONDS)."""
    import uvicorn

    config = uvicorn.Config(factory, host=host, port=port, timeout_keep_alive=KEEPALIVE_SECONDS, **UVICORN_OPTIONS)
    redact_access_log()  # after Config, which configures uvicorn's loggers
    uvicorn.Server(config).run()

