"""A load-balancer target for the tests: answers every path with its own name, and a health path it can fail.

python -m tests.support.lb_target --address A --port P --name NAME --state DIR
  GET /health  -> 200 "ok", or 503 while DIR/unhealthy exists (the test flips it)
  GET /slow    -> waits until DIR/release exists, then answers (a connection held open across a reload)
  GET /other   -> 200 "NAME", with the header X-Target: NAME
Each health check's Host and User-Agent headers are appended to DIR/health-checks.
"""

import argparse
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def serve(address: str, port: int, name: str, state: Path) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Target", name)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/health":
                with open(state / "health-checks", "a") as log:
                    log.write(f"{self.headers.get('Host')} {self.headers.get('User-Agent')}\n")
                return self._answer(503 if (state / "unhealthy").exists() else 200, "ok")
            if self.path == "/slow":
                while not (state / "release").exists():
                    time.sleep(0.05)
            self._answer(200, name)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer((address, port), Handler).serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    serve(args.address, args.port, args.name, args.state)
