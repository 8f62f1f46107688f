"""motor against the local MongoDB-wire database (FerretDB) — the subset the services use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo.errors import DuplicateKeyError

from hotline.metrics import MONGO_COMMAND_SECONDS
from hotline.mongo import (
    IndexSpec,
    MotorDatabase,
    claim,
    ensure_indexes,
    expire_older_than,
    make_client,
    next_sequence,
    release,
)
from hotline.testing import skip_unless_required
from hotline_cli.bench import stack_pids
from hotline_cli.pipeline import process_usage

pytestmark = pytest.mark.integration


async def test_insert_find_upsert(mongo_db: MotorDatabase) -> None:
    cases = mongo_db["cases"]
    await cases.insert_one({"_id": "HUE-1", "state": "new", "priority": "P1"})
    found = await cases.find_one({"_id": "HUE-1"})
    assert found is not None and found["state"] == "new"

    result = await cases.update_one({"_id": "HUE-2"}, {"$set": {"state": "assigned"}}, upsert=True)
    assert result.upserted_id == "HUE-2"
    # A conditional update only moves a case from the state it is in.
    moved = await cases.update_one(
        {"_id": "HUE-1", "state": "new"}, {"$set": {"state": "assigned"}}
    )
    stale = await cases.update_one(
        {"_id": "HUE-1", "state": "new"}, {"$set": {"state": "acknowledged"}}
    )
    assert (moved.modified_count, stale.modified_count) == (1, 0)
    assert await cases.count_documents({"state": "assigned"}) == 2


async def test_unique_index_rejects_a_duplicate(mongo_db: MotorDatabase) -> None:
    await ensure_indexes(
        mongo_db,
        [IndexSpec("reports", [("event_id", 1)], unique=True, name="event_id_unique")],
    )
    await ensure_indexes(  # idempotent
        mongo_db,
        [IndexSpec("reports", [("event_id", 1)], unique=True, name="event_id_unique")],
    )
    await mongo_db["reports"].insert_one({"event_id": "e1"})
    with pytest.raises(DuplicateKeyError):
        await mongo_db["reports"].insert_one({"event_id": "e1"})
    assert await mongo_db["reports"].count_documents({}) == 1


async def test_sequence_numbers_are_unique_under_concurrency(mongo_db: MotorDatabase) -> None:
    await ensure_indexes(mongo_db, [])
    values = await asyncio.gather(*(next_sequence(mongo_db, "case:20240124") for _ in range(30)))
    assert sorted(values) == list(range(1, 31))
    assert await next_sequence(mongo_db, "case:20240125") == 1


async def test_claims_are_won_exactly_once_under_concurrency(mongo_db: MotorDatabase) -> None:
    # 4 "replicas" race for 25 escalation steps: each step is won exactly once.
    results = await asyncio.gather(
        *(claim(mongo_db, f"esc:{step}", by=f"r{r}") for step in range(25) for r in range(4))
    )
    assert sum(results) == 25
    assert await mongo_db["claims"].count_documents({}) == 25
    await release(mongo_db, "esc:0")
    assert await claim(mongo_db, "esc:0")


async def test_explicit_expiry_replaces_ttl_indexes(mongo_db: MotorDatabase) -> None:
    now = datetime.now(UTC)
    await ensure_indexes(
        mongo_db, [IndexSpec("dedup", [("seen_at", 1)], expire_after=timedelta(days=7))]
    )
    await mongo_db["dedup"].insert_many(
        [{"k": "old", "seen_at": now - timedelta(days=8)}, {"k": "new", "seen_at": now}]
    )
    assert await expire_older_than(mongo_db, "dedup", "seen_at", now - timedelta(days=7)) == 1
    assert [d["k"] async for d in mongo_db["dedup"].find({})] == ["new"]


async def test_ensure_indexes_is_idempotent_with_several_indexes(mongo_db: MotorDatabase) -> None:
    # A restarted service re-ensures every index; FerretDB 1.24 dropped the connection when
    # one createIndexes listed several indexes that already existed.
    specs = [
        IndexSpec("cases", [("state", 1), ("opened_at", -1)], name="state_opened"),
        IndexSpec("cases", [("category", 1)], name="category"),
        IndexSpec("cases", [("opened_by", 1)], unique=True, name="opened_by_unique"),
    ]
    for _ in range(3):
        await ensure_indexes(mongo_db, specs)
    names = {i["name"] async for i in mongo_db["cases"].list_indexes()}
    assert {"state_opened", "category", "opened_by_unique"} <= names


async def test_every_command_is_timed_by_collection(mongo_uri: str) -> None:
    def count(command: str, collection: str) -> float:
        for metric in MONGO_COMMAND_SECONDS.collect():
            for sample in metric.samples:
                labels = sample.labels
                if (
                    sample.name.endswith("_count")
                    and labels["service"] == "timer-test"
                    and labels["command"] == command
                    and labels["collection"] == collection
                ):
                    return sample.value
        return 0.0

    client = make_client(mongo_uri, "hotline-timer-test")
    try:
        db = client["hotline_timer_test"]
        before_insert, before_find = count("insert", "timed"), count("find", "timed")
        await db["timed"].insert_one({"n": 1})
        await db["timed"].find_one({"n": 1})
        assert count("insert", "timed") == before_insert + 1
        assert count("find", "timed") == before_find + 1
    finally:
        await client.drop_database("hotline_timer_test")
        client.close()


def _ferretdb_cpu_s() -> float | None:
    """CPU seconds used so far by the local stack's FerretDB (None when it is not ours)."""
    pid = stack_pids(Path(__file__).parents[2]).get("ferretdb")
    usage = process_usage(pid) if pid is not None else None
    return usage.cpu_s if usage is not None else None


async def test_lookups_by_id_use_the_index_not_a_scan(mongo_db: MotorDatabase) -> None:
    """The local FerretDB is built with a one-line patch (deploy/local/stack.py) so that a
    find, update or delete by `_id` uses the `_id` index: unpatched, SQLite read the whole
    table for each (an update by `_id` cost ~100 ms of CPU at 5,000 documents, several seconds
    for the 250 lookups below); patched they cost ~1 ms each at any size."""
    info = await mongo_db.client.admin.command("buildInfo")
    if "ferretdbVersion" not in info and "ferretdb" not in info:
        pytest.skip("not FerretDB: MongoDB answers lookups by _id from its index")
    if _ferretdb_cpu_s() is None:
        skip_unless_required("this FerretDB was not started by deploy/local/stack.py (no PID file)")
    alerts = mongo_db["alerts"]
    n = 5000
    for start in range(0, n, 1000):
        await alerts.insert_many(
            [
                {"_id": f"HUE-{i:05d}", "status": "alerting", "chain": [{"level": 0}] * 4}
                for i in range(start, start + 1000)
            ]
        )
    last = [f"HUE-{n - 1 - i:05d}" for i in range(100)]  # a scan reaches these last
    before = _ferretdb_cpu_s()
    for key in last:
        await alerts.update_one({"_id": key}, {"$set": {"status": "acknowledged"}})
    found = [await alerts.find_one({"_id": key}) for key in last]
    for key in last[:50]:
        await alerts.delete_one({"_id": key})
    used = (_ferretdb_cpu_s() or 0.0) - (before or 0.0)
    assert all(d is not None and d["status"] == "acknowledged" for d in found)
    assert await alerts.count_documents({}) == n - 50
    assert used < 2.0, f"250 lookups by _id cost FerretDB {used:.2f} s of CPU: a scan each?"
