"""`python -m sifu --host H --port P --workers N`: check the settings, prepare the database, serve."""

from __future__ import annotations

import argparse
import sys


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
    from sifu import storage

    # Who may write where on the shared volume (sifu/storage.py); an older tree is migrated once.
    try:
        storage.check_volume(settings.notebook_root, settings.volume_id)
    except storage.VolumeUnavailable:
        pass  # the API refuses writes until the volume is there; the layout is made then, at the next start
    else:
        storage.ensure_layout(settings.notebook_root)

    from sifu.app import create_app  # FastAPI, pydantic, SQLAlchemy and Sifu: gunicorn's preload with workers

    if args.workers == 1:
        from sifu.serving import serve_in_this_process

        serve_in_this_process(create_app, args.host, args.port)  # sifu/serving.py says why no master
    else:
        from sifu.workers import serve_with_workers

        serve_with_workers(create_app, args.host, args.port, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
