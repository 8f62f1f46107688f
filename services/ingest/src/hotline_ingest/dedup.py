"""Exactly one event per delivery: claims on `(channel, provider message id)` in MongoDB.

A delivery is claimed (`ingest:<channel>:<provider message id>`, a unique `_id` in the shared
`claims` collection, the same document `hotline.mongo.claim` writes) *before* it is published.
FerretDB makes unique inserts atomic but not conditional updates, so the claim insert is the
only decision point; everything else is read-only or written by the claim's single owner.

The claim document keeps the event id and `received_at` it was claimed with. That matters when
a publish fails: the broker may still write the record later (the producer keeps retrying a
batch it already queued until its own request timeout), so the claim is not deleted but marked
`failed`, and the provider's retry republishes under the *same* event id, which every consumer
deduplicates. `hotline.mongo.release` is used where nothing can have reached the broker: a
claim won by a request that gave up waiting for the database.

The hot path costs one insert per delivery, batched: concurrent requests' claims share one
`insert_many(ordered=False)` (group commit), because FerretDB manages ~750 single inserts/s on
two cores and ~2,300/s in batches. Success is therefore *not* written back (an update per
delivery would halve throughput); instead:

* this process remembers what it published (and what it is publishing: a concurrent retry waits
  for that outcome instead of racing it);
* another replica (or this one after a restart) that meets a young `pending` claim cannot tell
  "still publishing" from "published", so it answers 503 and the provider retries; once the
  claim is older than the in-flight window (database + broker deadlines + margin) it publishes
  again under the claim's event id: a hard crash between claim and broker ack must not lose
  the delivery, and a second record of an event id is deduplicated by every consumer.

Claims expire after the retention period by an explicit periodic delete (no TTL on FerretDB),
restricted to ingest's own claims (`owner: "ingest"`): other services keep claims in the same
collection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo.errors import BulkWriteError, PyMongoError

from hotline.clock import Clock, ensure_utc
from hotline.logging import get_logger
from hotline.mongo import ASCENDING, IndexSpec, MotorDatabase, ensure_indexes, release

log = get_logger(__name__)

CLAIMS = "claims"
OWNER = "ingest"
DUPLICATE_KEY = 11000
RELEASE_TIMEOUT_S = 10.0

INDEXES = [
    IndexSpec(CLAIMS, [("owner", ASCENDING), ("claimed_at", ASCENDING)], name="ingest_expiry"),
]


def dedup_key(channel: str, provider_message_id: str) -> str:
    """The idempotency key of docs/architecture.md: `ingest:<channel>:<provider message id>`."""
    return f"ingest:{channel}:{provider_message_id}"


class DedupUnavailable(Exception):
    """The dedup store did not answer in time: fail closed (503), never publish unchecked."""


class Decision(StrEnum):
    NEW = "new"  # claimed now: publish
    RETRY = "retry"  # an earlier attempt failed: publish again under the stored event id
    DUPLICATE = "duplicate"  # already published: answer 2xx, publish nothing
    IN_FLIGHT = "in_flight"  # another request may be publishing it right now: answer 503


@dataclass(frozen=True)
class Reservation:
    key: str
    decision: Decision
    event_id: str | None = None
    received_at: datetime | None = None
    failed_before: bool = False  # RETRY of a claim already marked `failed` in the database


class _Bounded(OrderedDict[str, Any]):
    """An LRU dict: the oldest entries go beyond `limit`."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class ClaimBatcher:
    """Group commit for claim inserts: whoever waits while an insert runs joins the next one."""

    def __init__(self, db: MotorDatabase, *, batch_size: int, concurrency: int) -> None:
        self.db = db
        self.batch_size = batch_size
        self.concurrency = concurrency
        self._queue: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # Set by the ledger: gives back claims won by requests that stopped waiting for them.
        self.on_abandoned_win: Callable[[list[str]], Coroutine[Any, Any, None]] | None = None

    def claim(self, doc: dict[str, Any]) -> asyncio.Future[bool]:
        """A future that is True when this process's insert of `doc` won the `_id`."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((doc, fut))
        if self._running < self.concurrency:
            self._running += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return fut

    async def _drain(self) -> None:
        try:
            while self._queue:
                taken = self._queue[: self.batch_size]
                del self._queue[: self.batch_size]
                # A request that stopped waiting while its claim was queued (deadline,
                # disconnect) was answered 503: its claim is not written at all, rather than
                # written and then given back (two writes per abandoned request under load).
                batch = [(doc, fut) for doc, fut in taken if not fut.done()]
                if batch:
                    await self._flush(batch)
        finally:
            self._running -= 1

    async def _flush(self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> None:
        won = [True] * len(batch)
        failed: dict[int, Exception] = {}
        try:
            await self.db[CLAIMS].insert_many([doc for doc, _ in batch], ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                index = int(err.get("index", -1))
                if not 0 <= index < len(batch):
                    continue
                won[index] = False
                if err.get("code") != DUPLICATE_KEY:
                    failed[index] = DedupUnavailable(str(err.get("errmsg", "write error"))[:200])
        except (PyMongoError, OSError) as exc:
            for i in range(len(batch)):
                failed[i] = DedupUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}")
        abandoned: list[str] = []
        for i, (doc, fut) in enumerate(batch):
            if fut.done():  # the request gave up waiting (timeout, disconnect)
                if won[i] and i not in failed:
                    abandoned.append(str(doc["_id"]))
                continue
            if i in failed:
                fut.set_exception(failed[i])
            else:
                fut.set_result(won[i])
        if abandoned and self.on_abandoned_win is not None:
            # In the background: the next batch of claims must not wait behind the give-backs
            # (a whole batch may be abandoned when the database is slow).
            task: asyncio.Task[None] = asyncio.create_task(self.on_abandoned_win(abandoned))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task


class DedupLedger:
    """Decides, for each delivery, whether to publish it, and remembers what was published."""

    def __init__(
        self,
        db: MotorDatabase,
        clock: Clock,
        *,
        inflight_window_s: float,
        timeout_s: float,
        batch_size: int = 256,
        concurrency: int = 1,
        remember: int = 65_536,
    ) -> None:
        self.db = db
        self.clock = clock
        self.window = timedelta(seconds=inflight_window_s)
        self.timeout_s = timeout_s
        self.batcher = ClaimBatcher(db, batch_size=batch_size, concurrency=concurrency)
        self.batcher.on_abandoned_win = self._give_back
        # Outcome of deliveries this process is deciding or publishing right now.
        self._inflight: dict[str, asyncio.Future[bool]] = {}
        # Recently published here: key -> event id (sized to outlast the in-flight window).
        self._published = _Bounded(remember)
        # Claims whose `failed` mark or release could not be written: retry them from memory.
        self._failed_here = _Bounded(10_000)

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.db, INDEXES)

    # ------------------------------------------------------------------ deciding

    async def reserve(self, key: str, event_id: str, received_at: datetime) -> Reservation:
        """Claim `key` for a delivery about to be published, or say why not.

        NEW and RETRY reservations must be settled with `succeeded` or `failed`. Raises
        DedupUnavailable when the database does not answer within the deadline.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window.total_seconds()
        while (pending := self._inflight.get(key)) is not None:
            # The same delivery is being handled by another request of this process (a provider
            # retrying while we publish): wait for that outcome rather than racing it.
            try:
                async with asyncio.timeout_at(deadline):
                    published = await asyncio.shield(pending)
            except TimeoutError:
                return Reservation(key, Decision.IN_FLIGHT)
            if published:
                return Reservation(key, Decision.DUPLICATE, self._published.get(key))
        known = self._published.get(key)
        if known is not None:
            return Reservation(key, Decision.DUPLICATE, known)

        mine: asyncio.Future[bool] = loop.create_future()
        self._inflight[key] = mine
        try:
            reservation = await self._decide(key, event_id, received_at)
        except BaseException:
            self._settle(key, False)
            raise
        if reservation.decision is Decision.DUPLICATE:
            self._settle(key, True, reservation.event_id)
        elif reservation.decision is Decision.IN_FLIGHT:
            self._settle(key, False)
        return reservation

    async def _decide(self, key: str, event_id: str, received_at: datetime) -> Reservation:
        now = self.clock.now()
        doc = {
            "_id": key,
            "owner": OWNER,
            "state": "pending",
            "event_id": event_id,
            "received_at": received_at,
            "claimed_at": now,
        }
        if await self._claim(doc):
            return Reservation(key, Decision.NEW, event_id, received_at)
        existing = await self._find(key)
        if existing is None:  # released between our insert and our read: one more try
            if await self._claim(doc):
                return Reservation(key, Decision.NEW, event_id, received_at)
            return Reservation(key, Decision.IN_FLIGHT)
        stored_id = str(existing.get("event_id") or event_id)
        stored_at = existing.get("received_at")
        stored_received = ensure_utc(stored_at) if isinstance(stored_at, datetime) else None
        if existing.get("state") == "failed" or key in self._failed_here:
            return Reservation(
                key,
                Decision.RETRY,
                stored_id,
                stored_received or received_at,
                failed_before=existing.get("state") == "failed",
            )
        claimed_at = existing.get("claimed_at")
        if isinstance(claimed_at, datetime) and now - ensure_utc(claimed_at) < self.window:
            return Reservation(key, Decision.IN_FLIGHT)
        # Older than any attempt takes: either published, or its publisher died between the
        # claim and the broker's ack (kill -9, power loss). Success is not written back, so the
        # two look alike. Publishing again under the stored event id is harmless in the first
        # case (consumers deduplicate by event id) and saves the delivery in the second, which
        # answering "duplicate" would lose.
        return Reservation(key, Decision.RETRY, stored_id, stored_received or received_at)

    async def _claim(self, doc: dict[str, Any]) -> bool:
        fut = self.batcher.claim(doc)
        try:
            async with asyncio.timeout(self.timeout_s):
                return await fut
        except TimeoutError as exc:
            raise DedupUnavailable(f"claim not answered within {self.timeout_s}s") from exc

    async def _find(self, key: str) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.db[CLAIMS].find_one({"_id": key})
        except (TimeoutError, PyMongoError, OSError) as exc:
            raise DedupUnavailable(f"claim lookup failed: {type(exc).__name__}") from exc

    # ------------------------------------------------------------------ settling

    def _settle(self, key: str, published: bool, event_id: str | None = None) -> None:
        fut = self._inflight.pop(key, None)
        if published and event_id is not None:
            self._published.put(key, event_id)
        if fut is not None and not fut.done():
            fut.set_result(published)

    def succeeded(self, published: dict[str, str]) -> None:
        """The broker acknowledged these deliveries (key -> event id)."""
        for key, event_id in published.items():
            self._failed_here.pop(key, None)
            self._settle(key, True, event_id)

    async def failed(
        self, keys: list[str], already_marked: set[str] | frozenset[str] = frozenset()
    ) -> None:
        """Publishing was attempted and failed: keep the claims, marked for a retry (a claim an
        earlier attempt already marked is not written again)."""

        async def mark(key: str) -> None:
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self.db[CLAIMS].update_one({"_id": key}, {"$set": {"state": "failed"}})
            except (TimeoutError, PyMongoError, OSError):
                # The provider's retry may reach another replica, which will then answer it as
                # a duplicate once the window passed; this replica at least retries it.
                self._failed_here.put(key, True)
                log.warning("could not mark a claim failed", extra={"dedup_key": key})

        try:
            await asyncio.gather(*(mark(k) for k in keys if k not in already_marked))
        finally:
            for key in keys:
                self._settle(key, False)

    def forget(self, keys: list[str]) -> None:
        """Reservations that will not be published now; their claims stay as they are."""
        for key in keys:
            self._settle(key, False)

    async def abandon(self, keys: list[str]) -> None:
        """Nothing was handed to the broker for these claims: give them back."""
        try:
            await self._give_back(keys)
        finally:
            for key in keys:
                self._settle(key, False)

    async def _give_back(self, keys: list[str]) -> None:
        for key in keys:
            try:
                # Its own deadline, not the request's: nobody is waiting for this, and a claim
                # left behind makes the provider's retries wait out the in-flight window.
                async with asyncio.timeout(max(self.timeout_s, RELEASE_TIMEOUT_S)):
                    await release(self.db, key)
            except (TimeoutError, PyMongoError, OSError):
                self._failed_here.put(key, True)
                log.warning("could not release a claim", extra={"dedup_key": key})

    # ------------------------------------------------------------------ housekeeping

    async def expire(self, retention: timedelta) -> int:
        """Delete this service's claims older than `retention` (the explicit TTL)."""
        cutoff = self.clock.now() - retention
        result = await self.db[CLAIMS].delete_many({"owner": OWNER, "claimed_at": {"$lt": cutoff}})
        return int(result.deleted_count)

    async def close(self) -> None:
        await self.batcher.close()
