"""`python -m devlms --dev --port P --sifu-url URL ...`: run the development LMS (refuses without --dev)."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devlms", description="Development-only LMS and OAuth2 provider.")
    parser.add_argument("--dev", action="store_true", help="required: confirms this is a development run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--sifu-url", default=os.environ.get("DEVLMS_SIFU_URL", "http://127.0.0.1:3334"),
                        help="where devlms reaches Sifu (server side)")
    parser.add_argument("--sifu-public-url", default=os.environ.get("DEVLMS_SIFU_PUBLIC_URL", ""),
                        help="Sifu's URL as the browser sees it (default: --sifu-url)")
    parser.add_argument("--client-id", default=os.environ.get("EDX_OAUTH2_CLIENT_ID", "sifu-dev"))
    parser.add_argument("--redirect-uri", default=os.environ.get("EDX_OAUTH2_CLIENT_REDIRECT_URI", ""),
                        help="the redirect URI registered for Sifu (default: this LMS's /xblock/callback)")
    parser.add_argument("--students", type=int, default=0,
                        help="also accept student-1..student-N (password '<name>-pass'), for load tests")
    args = parser.parse_args(argv)
    if not (args.dev or os.environ.get("DEVLMS_DEV_MODE") == "1"):
        print("devlms: refusing to start: it is a development LMS with demo users and no real security. "
              "Pass --dev (or set DEVLMS_DEV_MODE=1) to run it on a development machine.", file=sys.stderr)
        return 2
    # The client secret comes from the environment only, never a command line (process lists show those).
    secret = os.environ.get("EDX_OAUTH2_CLIENT_SECRET", "")
    if not secret:
        print("devlms: EDX_OAUTH2_CLIENT_SECRET is not set; set it to the secret Sifu uses", file=sys.stderr)
        return 2
    import uvicorn

    from devlms.app import DevLmsConfig, create_app

    redirect_uri = args.redirect_uri or f"http://{args.host}:{args.port}/xblock/callback"
    app = create_app(DevLmsConfig(client_id=args.client_id, client_secret=secret, redirect_uri=redirect_uri,
                                  sifu_url=args.sifu_url.rstrip("/"),
                                  sifu_public_url=(args.sifu_public_url or args.sifu_url).rstrip("/"),
                                  students=max(0, args.students)))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
