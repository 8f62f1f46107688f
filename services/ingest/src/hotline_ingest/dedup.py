"""Exactly one event per delivery: claims on `(channel, provider message id)` in MongoDB.

A delivery is claimed (`ingest:<channel>:<provider message id>`, a unique `_id` in the shared
`claims` collection, the same document `hotline.mongo.claim` writes) *before* it is published.
FerretDB makes unique inserts atomic but not conditional updates, so the claim insert is the
only decision point; every later write to a claim is an unconditional `$set` by `_id` alone
(the only filter FerretDB 1.24 pushes down) from the request that owns the claim.

A claim goes `pending` -> `published` (the broker acknowledged the record: its mark document
exists) or `pending` -> `failed` (the publish failed or timed out). A claim keeps the event id
and `received_at` it was claimed with, so every republish is the *same* event, which every
consumer deduplicates.

* `published` is durable: a provider retry that meets it is a DUPLICATE at any age, on any
  replica, before or after a restart (2xx, nothing published). The mark is a second document,
  `<claim id>#published`, inserted after the broker's ack by a background batcher (one
  `insert_many` per group, like the claims), so the request does not wait for it; shutdown
  flushes it. An insert, not an update of the claim: grouped inserts cost FerretDB ~0.05 ms
  of CPU per document, an update is one command per claim (~0.8 ms; ~12 ms, a scan of the
  claims, before the local stack patched FerretDB's `_id` lookups, see deploy/local/stack.py),
  which at the pipeline's rates made the marks the database's largest cost.
* `failed`: the broker may still write the record later (the producer keeps retrying a batch
  it already queued until its own request timeout), so the claim is not deleted; the retry
  republishes under the claim's event id.
* `pending` and younger than the in-flight window (database + broker deadlines + margin): some
  request may be publishing it right now, so another replica answers 503 and the provider
  retries (on the replica that holds it, a retry waits for the outcome instead).
* `pending` and older than the window: its publisher died between the claim and the broker's
  ack (kill -9, power loss), or between the ack and the published mark (or the mark could not
  be written). The two look alike, so it is republished under the claim's event id: the first
  case must not lose the delivery; in the second the topic gets a second record of the *same*
  event id, which consumers drop as a duplicate.

`hotline.mongo.release` gives a claim back where nothing can have reached the broker: a claim
won by a request that gave up waiting for the database.

Claims expire after the retention period by an explicit periodic delete (no TTL on FerretDB),
restricted to ingest's own claims (`owner: "ingest"`): other services keep claims in the same
collection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo.errors import BulkWriteError, PyMongoError

from hotline.clock import Clock, ensure_utc
from hotline.logging import get_logger
from hotline.mongo import ASCENDING, IndexSpec, MotorDatabase, ensure_indexes, release
from hotline_ingest.metrics import UNMARKED_CLAIMS

log = get_logger(__name__)

CLAIMS = "claims"
OWNER = "ingest"
DUPLICATE_KEY = 11000
RELEASE_TIMEOUT_S = 10.0
MARK_ATTEMPTS = 3  # writes of one batch of published marks before giving up on it
MARK_FLUSH_TIMEOUT_S = 15.0  # how long shutdown waits for the marks still queued
PENDING, PUBLISHED, FAILED = "pending", "published", "failed"  # a claim's `state`
MARK_SUFFIX = "#published"
MARK_LINGER_S = 0.05  # how long the mark batcher gathers marks before writing them


def published_mark_id(key: str) -> str:
    """The `_id` of the document that says the claim `key` reached the broker."""
    return key + MARK_SUFFIX


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


class MarkBatcher:
    """Marks claims `published` once the broker acknowledged them, off the request's path.

    Keys are queued by `mark` (no await: the answer does not wait for the database) and written
    by one background task as `<key>#published` documents, one `insert_many(ordered=False)` per
    batch: whoever is queued while a write runs joins the next one; a mark that exists already
    (a republished delivery) is fine. A batch that
    cannot be written is tried `MARK_ATTEMPTS` times, then counted and logged: its claims stay
    `pending`, and a retry after the in-flight window republishes them under the same event id.
    """

    def __init__(self, db: MotorDatabase, clock: Clock, *, batch_size: int, timeout_s: float):
        self.db = db
        self.clock = clock
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.backoff_s = 0.5
        self.linger_s = MARK_LINGER_S
        self._queue: list[tuple[str, str | None]] = []
        self._task: asyncio.Task[None] | None = None

    def mark(self, published: Mapping[str, str] | Iterable[str]) -> None:
        """Queue marks for claims whose records the broker acknowledged (key -> event id)."""
        if isinstance(published, Mapping):
            self._queue.extend((k, str(v)) for k, v in published.items())
        else:
            self._queue.extend((k, None) for k in published)
        if self._queue and self._task is None:
            self._task = asyncio.create_task(self._drain())

    def __len__(self) -> int:
        return len(self._queue)

    async def _drain(self) -> None:
        try:
            while self._queue:
                # Linger: marks are off the request's path, so a short wait costs nobody
                # anything and turns a write per few requests into one per `linger_s` (at
                # 2,000 requests/s: ~20 inserts/s of 100 marks instead of hundreds of small
                # ones competing with the claims for the database).
                await asyncio.sleep(self.linger_s)
                batch = self._queue[: self.batch_size]
                del self._queue[: self.batch_size]
                await self._write(batch)
        finally:
            self._task = None

    async def _write(self, batch: list[tuple[str, str | None]]) -> None:
        now = self.clock.now()
        keys = [key for key, _ in batch]
        docs = [
            {
                "_id": published_mark_id(key),
                "owner": OWNER,  # expired with the claims (same retention, same index)
                "state": PUBLISHED,
                "event_id": event_id,
                "claimed_at": now,
            }
            for key, event_id in batch
        ]
        error = ""
        for attempt in range(MARK_ATTEMPTS):
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self.db[CLAIMS].insert_many(docs, ordered=False)
                return
            except BulkWriteError as exc:
                codes = {e.get("code") for e in exc.details.get("writeErrors", [])}
                if codes <= {DUPLICATE_KEY}:
                    return  # marked already (a republish, or our own earlier attempt)
                error = type(exc).__name__
            except (TimeoutError, PyMongoError, OSError) as exc:
                error = type(exc).__name__  # the whole batch again: duplicates are fine
            if attempt + 1 < MARK_ATTEMPTS:
                await asyncio.sleep(self.backoff_s * 2**attempt)
        UNMARKED_CLAIMS.inc(len(keys))
        log.warning(
            "could not mark claims published; a retry after the in-flight window republishes "
            "them under the same event id",
            extra={"claims": len(keys), "first_dedup_key": keys[0], "error": error},
        )

    async def flush(self) -> None:
        """Wait until every mark queued so far is written (or given up)."""
        while self._task is not None:
            await asyncio.shield(self._task)


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
        self.marks = MarkBatcher(db, clock, batch_size=batch_size, timeout_s=timeout_s)
        # Outcome of deliveries this process is deciding or publishing right now.
        self._inflight: dict[str, asyncio.Future[bool]] = {}
        # Recently published here: key -> event id. Spares a database read for retries that
        # reach this replica again; the `published` mark in the claim is what makes it durable.
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
            "state": PENDING,
            "event_id": event_id,
            "received_at": received_at,
            "claimed_at": now,
        }
        if await self._claim(doc):
            return Reservation(key, Decision.NEW, event_id, received_at)
        existing, mark = await asyncio.gather(self._find(key), self._find(published_mark_id(key)))
        if mark is not None:  # the broker acknowledged it, whenever and wherever
            stored = existing or mark
            stored_at = stored.get("received_at")
            return Reservation(
                key,
                Decision.DUPLICATE,
                str(stored.get("event_id") or mark.get("event_id") or event_id),
                ensure_utc(stored_at) if isinstance(stored_at, datetime) else None,
            )
        if existing is None:  # released between our insert and our read: one more try
            if await self._claim(doc):
                return Reservation(key, Decision.NEW, event_id, received_at)
            return Reservation(key, Decision.IN_FLIGHT)
        stored_id = str(existing.get("event_id") or event_id)
        stored_at = existing.get("received_at")
        stored_received = ensure_utc(stored_at) if isinstance(stored_at, datetime) else None
        state = existing.get("state")
        if state == FAILED or key in self._failed_here:
            return Reservation(
                key,
                Decision.RETRY,
                stored_id,
                stored_received or received_at,
                failed_before=state == FAILED,
            )
        claimed_at = existing.get("claimed_at")
        if isinstance(claimed_at, datetime) and now - ensure_utc(claimed_at) < self.window:
            return Reservation(key, Decision.IN_FLIGHT)
        # Pending and older than any attempt takes: its publisher died between the claim and
        # the broker's ack (kill -9, power loss), or between the ack and the published mark
        # (or the mark could not be written). The two look alike. Publishing again under the
        # stored event id saves the delivery in the first case, which answering "duplicate"
        # would lose, and in the second puts a second record of the same event on the topic,
        # which consumers deduplicate by event id.
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
        """The broker acknowledged these deliveries (key -> event id): answered as duplicates
        from now on, here at once and everywhere once the mark is written (background)."""
        for key, event_id in published.items():
            self._failed_here.pop(key, None)
            self._settle(key, True, event_id)
        self.marks.mark(published)

    async def failed(
        self, keys: list[str], already_marked: set[str] | frozenset[str] = frozenset()
    ) -> None:
        """Publishing was attempted and failed: keep the claims, marked for a retry (a claim an
        earlier attempt already marked is not written again)."""

        async def mark(key: str) -> None:
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self.db[CLAIMS].update_one({"_id": key}, {"$set": {"state": FAILED}})
            except (TimeoutError, PyMongoError, OSError):
                # The claim stays `pending`: another replica republishes it once the in-flight
                # window passed (503 before that); this replica retries it at once.
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

    async def flush(self) -> None:
        """Wait for the published marks queued so far (tests; shutdown)."""
        await self.marks.flush()

    async def close(self) -> None:
        await self.batcher.close()
        try:
            async with asyncio.timeout(MARK_FLUSH_TIMEOUT_S):
                await self.marks.flush()
        except TimeoutError:
            log.warning(
                "published marks not all written at shutdown", extra={"queued": len(self.marks)}
            )
