"""The shared runner, with the records of one partition processed concurrently across keys.

`hotline.runner.Runner` processes the partitions of a poll concurrently and the records of a
partition one after the other, so that one key's records keep their order. Decisions are keyed
by case id and the cases in a partition are independent, so the notifier only needs order
*per key*: records with different keys run concurrently (up to `max_in_flight`), records with
the same key in order. Everything else — decoding, poison and transient handling,
dead-lettering, publish-then-commit — is the shared runner's, unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from aiokafka import ConsumerRecord
from pydantic import BaseModel

from hotline.kafka import Outgoing
from hotline.runner import Runner

M = TypeVar("M", bound=BaseModel)


class KeyParallelRunner(Runner[M]):
    def __init__(self, *args: Any, max_in_flight: int = 64, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(max_in_flight)

    async def _process_partition(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[Outgoing]:
        by_key: dict[bytes | None, list[int]] = {}
        for index, record in enumerate(records):
            by_key.setdefault(record.key, []).append(index)
        results: list[list[Outgoing]] = [[] for _ in records]

        async def run(indexes: list[int]) -> None:
            for index in indexes:
                async with self._slots:
                    results[index] = await self._process_record(records[index])

        await asyncio.gather(*(run(indexes) for indexes in by_key.values()))
        return [out for result in results for out in result]
