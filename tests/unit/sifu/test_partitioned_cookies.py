"""`Partitioned` is added to cross-site Set-Cookie headers (Secure; SameSite=None) and to nothing else."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders

from sifu.jupyter import PartitionCrossSiteCookies, PartitionedCookieHeaders, partitioned

# What tornado 6 writes for Jupyter's _xsrf cookie with xsrf_cookie_kwargs from tornado_settings(secure).
XSRF = "_xsrf=2|8f1c2d3e|0a1b2c3d4e5f|1764120000; Path=/; SameSite=None; Secure"


def test_the_xsrf_cookie_becomes_partitioned():
    assert partitioned(XSRF) == XSRF + "; Partitioned"


@pytest.mark.parametrize("header", [
    "_xsrf=2|abc|def|1; Path=/; SameSite=Lax",                # the http (same-site) setting
    "a=1; Path=/; SameSite=None",                               # not Secure: browsers reject it anyway
    "a=1; Path=/; Secure",                                      # no SameSite: Lax by default, not cross-site
    "a=1; Path=/; SameSite=Lax; Secure",
    "a=1; Path=/; SameSite=Strict; Secure; HttpOnly",
    "Secure=1; Path=/; SameSite=None",                          # a cookie *named* Secure is not the attribute
    'a="SameSite=None\\073 Secure"; Path=/',                    # nor are the words inside a (quoted) value
    "a=1; Path=/; SameSite=None; Secure; Partitioned",          # already partitioned
    "a=1; Path=/; samesite=none; secure; partitioned",          # attribute names are case-insensitive
    "sifu_identity=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=None; Partitioned",
])
def test_other_and_already_partitioned_cookies_are_left_alone(header):
    assert partitioned(header) == header


def test_attribute_names_and_values_are_matched_case_insensitively_and_never_twice():
    once = partitioned("a=1; path=/; SECURE; samesite=NONE")
    assert once == "a=1; path=/; SECURE; samesite=NONE; Partitioned"
    assert partitioned(once) == once
    assert partitioned(partitioned(XSRF)).count("Partitioned") == 1


def test_clearing_a_cross_site_cookie_is_partitioned_too():
    # Deleting a partitioned cookie only works with a partitioned Set-Cookie.
    cleared = "_xsrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=None; Secure"
    assert partitioned(cleared) == cleared + "; Partitioned"


def test_headers_copy_partitions_existing_and_later_set_cookie_values_only():
    original = HTTPHeaders()
    original.add("Content-Type", "text/html; charset=UTF-8")
    original.add("Set-Cookie", "plain=1; Path=/; SameSite=Lax")
    original.add("Set-Cookie", XSRF)
    original.add("X-Note", "Secure; SameSite=None")  # not a cookie: untouched
    headers = PartitionedCookieHeaders(original)
    headers.add("set-cookie", "late=1; Path=/; SameSite=None; Secure")  # as flush() adds pending cookies
    assert headers.get_list("Set-Cookie") == [
        "plain=1; Path=/; SameSite=Lax", XSRF + "; Partitioned", "late=1; Path=/; SameSite=None; Secure; Partitioned"]
    assert headers["X-Note"] == "Secure; SameSite=None"
    assert headers["Content-Type"] == "text/html; charset=UTF-8"
    headers["Set-Cookie"] = "only=1; SameSite=None; Secure; Partitioned"  # set_header replaces, never duplicates
    assert headers.get_list("Set-Cookie") == ["only=1; SameSite=None; Secure; Partitioned"]
    assert original.get_list("Set-Cookie") == ["plain=1; Path=/; SameSite=Lax", XSRF]  # the copy is separate


def test_the_transform_hands_back_partitioning_headers_and_leaves_status_and_body():
    original = HTTPHeaders({"Set-Cookie": XSRF})
    status, headers, chunk = PartitionCrossSiteCookies(None).transform_first_chunk(200, original, b"body", True)
    assert (status, chunk) == (200, b"body")
    assert isinstance(headers, PartitionedCookieHeaders)
    assert headers.get_list("Set-Cookie") == [XSRF + "; Partitioned"]
    assert PartitionCrossSiteCookies(None).transform_chunk(b"more", True) == b"more"
