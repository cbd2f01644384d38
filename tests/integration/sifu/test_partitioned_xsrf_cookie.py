"""Tornado's own flush order, on a real loopback server: cookies a handler sets (the _xsrf token included)
reach the wire through PartitionCrossSiteCookies, so the cross-site ones carry `Partitioned`."""

from __future__ import annotations

import asyncio

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from sifu.jupyter import PartitionCrossSiteCookies

pytestmark = pytest.mark.integration


class Page(web.RequestHandler):
    def get(self) -> None:
        self.xsrf_token  # sets the _xsrf cookie, as Jupyter's page templates do
        self.set_cookie("same_site", "1", samesite="Lax")
        self.set_cookie("cross_site", "1", samesite="None", secure=True)
        self.finish("ok")


async def _set_cookies(with_transform: bool) -> list[str]:
    app = web.Application([("/", Page)], xsrf_cookies=True,
                          xsrf_cookie_kwargs={"path": "/", "samesite": "None", "secure": True})
    if with_transform:
        app.add_transform(PartitionCrossSiteCookies)
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        reply = await client.fetch(f"http://127.0.0.1:{port}/")
        return sorted(reply.headers.get_list("Set-Cookie"))
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()


def test_cross_site_cookies_leave_tornado_partitioned_and_others_do_not():
    cookies = asyncio.run(_set_cookies(with_transform=True))
    assert [c.split("=", 1)[0] for c in cookies] == ["_xsrf", "cross_site", "same_site"]
    xsrf, cross, same = cookies
    assert xsrf.endswith("; Path=/; SameSite=None; Secure; Partitioned"), xsrf
    assert cross == "cross_site=1; Path=/; SameSite=None; Secure; Partitioned"
    assert same == "same_site=1; Path=/; SameSite=Lax"


def test_without_the_transform_tornado_writes_no_partitioned_attribute():
    # The reason the transform exists (and proof that the test above can fail).
    cookies = asyncio.run(_set_cookies(with_transform=False))
    assert len(cookies) == 3 and not any("Partitioned" in c for c in cookies), cookies
