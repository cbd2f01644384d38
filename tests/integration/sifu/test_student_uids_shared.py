"""Stable kernel uids across Sifu processes: two Sifus on one database (SQLite, PostgreSQL) give every student the
same uid, whichever signed them in first; the kernel broker reads it from /internal/student-uids/<name>."""

from __future__ import annotations

import threading

import httpx
import pytest

from sifu.db import UID_BASE, UidStore, create_schema, make_engine
from tests.support.sifu_stack import start_sifu

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sifu_stack", "sifu_stack_postgres"], ids=["sqlite", "postgresql"])
def stack(request):
    return request.getfixturevalue(request.param)


def test_two_sifus_on_one_database_agree_on_every_students_uid(stack, tmp_path):
    second = start_sifu(tmp_path, stack.sifu.env, name="sifu-second")
    names = ["alice", "bob", "instructor"]  # devlms's users
    try:
        # Each signs in through one Sifu, and instructor through both at the same time.
        def sign_in(url: str, name: str) -> None:
            reply = httpx.post(f"{url}/token", timeout=20, json={
                "username": name, "auth_code": stack.devlms.auth_code(name), "grant_type": "edx_auth_code"})
            assert reply.status_code == 200, reply.text

        threads = [threading.Thread(target=sign_in, args=(url, name)) for url, name in (
            (stack.sifu.url, "alice"), (second.url, "bob"), (stack.sifu.url, "instructor"), (second.url, "instructor"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        answers = {url: {name: httpx.get(f"{url}/internal/student-uids/{name}", timeout=10).json()["uid"] for name in names}
                   for url in (stack.sifu.url, second.url)}
        first, other = answers.values()
        assert first == other
        assert len(set(first.values())) == len(names) and min(first.values()) > UID_BASE
        assert httpx.get(f"{second.url}/internal/student-uids/nobody-signed-in", timeout=10).status_code == 404
        assert httpx.get(f"{second.url}/internal/student-uids/..", timeout=10).status_code == 404
    finally:
        second.stop()


def test_concurrent_allocation_on_postgresql_hands_out_no_uid_twice(postgres_server):
    engines = [make_engine(postgres_server.url) for _ in range(2)]
    create_schema(engines[0])
    stores = [UidStore(engine) for engine in engines]
    names = [f"pg{i}" for i in range(1000)]
    results: dict[str, set[int]] = {name: set() for name in names}

    def allocate(store: UidStore, order: list[str]) -> None:
        for name in order:
            results[name].add(store.allocate(name))

    threads = [threading.Thread(target=allocate, args=(stores[0], names)),
               threading.Thread(target=allocate, args=(stores[1], names[::-1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(found) == 1 for found in results.values())
    assert len({found.pop() for found in results.values()}) == len(names)
    for engine in engines:
        engine.dispose()
