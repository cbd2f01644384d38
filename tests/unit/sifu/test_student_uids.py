"""Stable kernel uids (sifu/db.py UidStore): one per student, from the shared database, never reused."""

from __future__ import annotations

import threading

from sqlalchemy import delete

from sifu.db import UID_BASE, UidStore, create_schema, make_engine, student_uids


def store(path) -> UidStore:
    engine = make_engine(f"sqlite:///{path}")  # ":memory:": one database per thread (SingletonThreadPool)
    create_schema(engine)
    return UidStore(engine)


def test_a_hundred_thousand_names_get_distinct_stable_uids_above_the_base(tmp_path):
    uids = store(":memory:")  # the allocation logic, without 100,000 fsyncs
    names = [f"student{i:06d}" for i in range(100_000)]
    allocated = {name: uids.allocate(name) for name in names}
    assert len(set(allocated.values())) == len(names)
    assert min(allocated.values()) > UID_BASE
    assert all(uids.allocate(name) == allocated[name] for name in names[::997])  # asked again: the same


def test_two_sifus_on_one_database_agree_on_every_uid(tmp_path):
    first, second = store(tmp_path / "shared.db"), store(tmp_path / "shared.db")
    names = [f"s{i}" for i in range(300)]
    results: dict[str, list[int]] = {name: [] for name in names}

    def allocate_all(uids: UidStore, order: list[str]) -> None:
        for name in order:
            results[name].append(uids.allocate(name))

    threads = [threading.Thread(target=allocate_all, args=(first, names)),
               threading.Thread(target=allocate_all, args=(second, names[::-1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(set(found)) == 1 for found in results.values())
    assert len({found[0] for found in results.values()}) == len(names)


def test_a_deleted_students_uid_is_never_handed_out_again(tmp_path):
    uids = store(tmp_path / "sifu.db")
    gone = uids.allocate("gone")
    with uids.engine.begin() as conn:
        conn.execute(delete(student_uids).where(student_uids.c.username == "gone"))
    assert uids.uid_of("gone") is None
    assert uids.allocate("newcomer") != gone
