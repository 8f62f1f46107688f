"""The repository's grouped unique inserts keep claim semantics on FerretDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from hotline.mongo import MotorDatabase
from hotline_notifier.repository import Repository

pytestmark = pytest.mark.integration


async def test_grouped_claims_have_exactly_one_winner_per_key(mongo_db: MotorDatabase) -> None:
    repo = Repository(mongo_db)
    now = datetime.now(UTC)
    await repo.claim("dlv:k3", now)  # taken before, one by one
    keys = [f"dlv:k{i % 10}" for i in range(60)]  # each key asked for six times at once
    results = await asyncio.gather(*(repo.claim_batched(k, now) for k in keys))
    winners = [k for k, won in zip(keys, results, strict=True) if won]
    assert sorted(winners) == sorted(f"dlv:k{i}" for i in range(10) if i != 3)
    assert await mongo_db["claims"].count_documents({"service": "notifier"}) == 10
    # The same claim through the shared helper is refused now.
    assert not await repo.claim("dlv:k5", now)


async def test_a_failed_batch_fails_every_insert_in_it(mongo_db: MotorDatabase) -> None:
    repo = Repository(mongo_db)

    class Down:
        async def insert_many(self, docs: object, ordered: bool) -> None:
            raise ConnectionError("database away")

    repo._claims_batch.collection = Down()
    now = datetime.now(UTC)
    results = await asyncio.gather(
        *(repo.claim_batched(f"dlv:x{i}", now) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_inserts_a_few_ms_apart_share_one_write_within_the_window(
    mongo_db: MotorDatabase,
) -> None:
    repo = Repository(mongo_db, insert_window_s=0.2)
    real = repo._claims_batch.collection
    writes: list[int] = []

    class Counting:
        async def insert_many(self, docs: list[dict[str, object]], ordered: bool) -> object:
            writes.append(len(docs))
            return await real.insert_many(docs, ordered=ordered)

    repo._claims_batch.collection = Counting()
    now = datetime.now(UTC)

    async def later(i: int, key: str) -> bool:
        await asyncio.sleep(0.01 * i)  # arriving one after another, not in one gather step
        return await repo.claim_batched(key, now)

    keys = ["dlv:w1", "dlv:w2", "dlv:w1", "dlv:w3", "dlv:w4"]
    results = await asyncio.gather(*(later(i, k) for i, k in enumerate(keys)))

    assert writes == [5]  # one insert_many for the five
    assert results == [True, True, False, True, True]  # one winner per key, the first
    assert await mongo_db["claims"].count_documents({"service": "notifier"}) == 4
