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
