"""`python -m sifu --host H --port P --workers N`: check the settings, prepare the database, serve."""

from __future__ import annotations

import argparse
import copy
import logging
import re
import sys


class RedactTokens(logging.Filter):
    """Access-log lines must not carry tokens: serve URLs hold `?Authorization=Bearer T`."""

    _query_token = re.compile(r"(Authorization=)[^&\s]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = self._query_token.sub(r"\1[redacted]", args[2])
            record.args = tuple(args)
        return True


def log_config() -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": "sifu.__main__.RedactTokens"}}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sifu", description="Run the Sifu API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3334)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="check the settings and the database, then exit")
    args = parser.parse_args(argv)

    from sifu import config

    try:
        settings = config.load()
    except config.SettingError as exc:
        print(f"sifu: cannot start: {exc}", file=sys.stderr)
        return 2
    from sifu.db import create_schema, make_engine

    # Create the schema once here, so workers do not race on it.
    engine = make_engine(settings.database_url)
    try:
        create_schema(engine)
    except Exception as exc:  # the driver's own error types; all mean the database is unusable
        print(f"sifu: cannot start: the database is unusable ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
              "check SIFU_DATABASE_URL or RDS_*", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if args.check:
        print("sifu: settings and database OK")
        return 0

    import uvicorn

    if args.workers > 1:
        from sifu.workers import use_forked_workers

        # Workers forked from this preloaded master start in a fraction of the time, and die with it.
        use_forked_workers()
    uvicorn.run("sifu.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_config=log_config(), proxy_headers=True, timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
