"""Stands in for the app containers of the test hosts: one real HTTP server per address:port.

Usage: python app_standin.py READY_FILE ADDRESS:PORT... Every answer says which address and
port it came from, so a test can tell that host N's nginx reached host N's "container".
"""

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        address, port = self.server.server_address[:2]
        body = f"app {address}:{port} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> None:
    ready, *listen = sys.argv[1:]
    servers = []
    for item in listen:
        address, port = item.rsplit(":", 1)
        servers.append(ThreadingHTTPServer((address, int(port)), Handler))
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    Path(ready).write_text("ready\n")
    threading.Event().wait()


if __name__ == "__main__":
    main()
