"""A small HTTP + websocket server standing in for an app behind nginx (tornado, like Jupyter).

python -m tests.support.echo_backend --port P --name NAME
  GET /anything  -> 200 "NAME <path> host=<Host> proto=<X-Forwarded-Proto>"
  GET /ws        -> websocket echo, replies "NAME:<message>"
Tornado answers a websocket request without the Upgrade headers with 400, as Jupyter does.
"""

import argparse
import asyncio

import tornado.web
import tornado.websocket


def make_app(name: str) -> tornado.web.Application:
    class Echo(tornado.websocket.WebSocketHandler):
        def check_origin(self, origin):
            return True

        def on_message(self, message):
            self.write_message(f"{name}:{message}")

    class Plain(tornado.web.RequestHandler):
        def get(self, path):
            self.write(f"{name} /{path} host={self.request.headers.get('Host')} "
                       f"proto={self.request.headers.get('X-Forwarded-Proto')}")

        post = get

    return tornado.web.Application([(r"/ws", Echo), (r"/(.*)", Plain)])


async def main(port: int, name: str) -> None:
    make_app(name).listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.name))
