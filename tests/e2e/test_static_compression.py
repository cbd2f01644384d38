"""Through nginx in front of the real Jupyter: Notebook 7's files are compressed for the browser, pages and API
answers are not (.nginx/vhost.conf.j2 says why)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.e2e_stack import random_file

pytestmark = pytest.mark.e2e

GZIP = {"Accept-Encoding": "gzip"}


@pytest.fixture(scope="module")
def student_page(e2e_stack):
    """A student's notebook page through nginx (the XBlock flow, then Sifu's redirect), and its identity."""
    cookies, location = e2e_stack.identity("alice", random_file("compressed"))
    page = httpx.get(location, cookies=cookies, headers=GZIP, timeout=30)
    assert page.status_code == 200, page.text[:500]
    return page, cookies


def main_script(page: httpx.Response) -> str:
    found = re.search(r'src="(/static/notebook/main\.[0-9a-f]+\.js)', page.text)
    assert found, page.text[:1000]
    return found.group(1)


def test_notebook_7_scripts_are_compressed_and_unchanged(e2e_stack, student_page):
    path = main_script(student_page[0])
    direct = httpx.get(f"{e2e_stack.direct_jupyter_url}{path}", headers=GZIP, timeout=10)
    through = httpx.get(f"{e2e_stack.jupyter_url}{path}", headers=GZIP, timeout=10)
    assert direct.status_code == through.status_code == 200
    assert "content-encoding" not in direct.headers  # Jupyter itself sends it whole
    assert through.headers["content-encoding"] == "gzip"
    assert through.headers["vary"] == "Accept-Encoding"
    assert through.content == direct.content  # as httpx decoded it
    assert through.num_bytes_downloaded < len(direct.content) / 2
    assert "immutable" in through.headers["cache-control"]


def test_pages_and_api_answers_are_not_compressed(e2e_stack, student_page):
    page, cookies = student_page
    assert "content-encoding" not in page.headers
    for path in ("/api/contents", "/lab/api/settings", "/api/status"):
        reply = httpx.get(f"{e2e_stack.jupyter_url}{path}", cookies=cookies, headers=GZIP, timeout=10)
        assert reply.status_code == 200, (path, reply.status_code)
        assert "content-encoding" not in reply.headers, (path, reply.headers)


def test_a_client_that_does_not_ask_gets_the_script_uncompressed(e2e_stack, student_page):
    path = main_script(student_page[0])
    reply = httpx.get(f"{e2e_stack.jupyter_url}{path}", headers={"Accept-Encoding": "identity"}, timeout=10)
    assert reply.status_code == 200 and "content-encoding" not in reply.headers
    assert reply.num_bytes_downloaded == len(reply.content) > 100_000
