"""MongoDB access for the notifier (FerretDB-safe: claims for every exactly-once decision).

Collections:
* `notifier_alerts` — one `AlertState` per alerted case: the durable escalation timer.
* `claims` (shared, keys prefixed `ntf:`) — escalation steps `esc:<case>:<cycle>:<level>`,
  reminders, deliveries `dlv:<delivery_id>` (with the stored outcome), per-recipient results,
  acknowledgements `ack:<case>:<cycle>`, used ack tokens, resolutions, daily courtesy replies.
* `notifier_provider_tokens` — the latest Zalo access/refresh tokens.

FerretDB does not make concurrent updates atomic, so a document is only updated by whoever
holds the claim for the change; facts that several processes may race on (acknowledged,
resolved) are claim documents, and the alert's `status` is a cache the scheduler repairs.

FerretDB answers only a query on `_id` alone without reading the whole collection, so the
repository also remembers the timers of the alerts this process wrote (`timers`): the scheduler
reads those alerts by `_id` when they fall due, and sweeps the collection only now and then
(alerts of other replicas, or written before a restart).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo.errors import BulkWriteError, OperationFailure

from hotline.clock import ensure_utc
from hotline.ids import new_event_id
from hotline.kafka import Outgoing
from hotline.mongo import ASCENDING, IndexSpec, MotorDatabase, claim, ensure_indexes, release

from .models import ACTIVE, UNACKNOWLEDGED, AlertState

PREFIX = "ntf:"
DUPLICATE_KEY = 11000
ALERTS = "notifier_alerts"
OUTBOX = "notifier_outbox"
TOKENS = "notifier_provider_tokens"

INDEXES = [
    IndexSpec(ALERTS, [("status", ASCENDING), ("next_due_at", ASCENDING)], name="status_due"),
    IndexSpec(ALERTS, [("updated_at", ASCENDING)], name="updated_at"),
]


class InsertBatcher:
    """Group commit for unique inserts: concurrent inserts share one `insert_many`.

    FerretDB spends most of an insert on per-command overhead (measured here: ~800 single
    inserts/s against ~5,800 docs/s in batches of 6), so the inserts of the partitions being
    processed at the same time are written together. Semantics are those of one `insert_one`
    per document: True when this document's `_id` was new, False for a duplicate (also within
    the batch: the first one wins), the error for anything else. At low load a batch is one
    document and adds no delay; under load, a batch fills while the previous one is written.
    With `window_s`, an insert that finds no write under way waits that long for company
    before it is written, which groups the inserts of records that arrive a few milliseconds
    apart (at 100 alerts/s, 3 ms took the claims from 1.3 to 1.05 commands per message).
    """

    def __init__(self, collection: Any, max_batch: int = 200, window_s: float = 0.0) -> None:
        self.collection = collection
        self.max_batch = max_batch
        self.window_s = window_s
        self._pending: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._writing = False
        self._task: asyncio.Task[None] | None = None

    async def insert(self, doc: dict[str, Any]) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((doc, future))
        if not self._writing:
            self._writing = True
            # Keep a reference: the loop holds tasks weakly.
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            if self.window_s > 0:
                await asyncio.sleep(self.window_s)
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._write(batch)
        finally:
            self._writing = False

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> None:
        failed: dict[int, BaseException | None] = {}
        try:
            await self.collection.insert_many([doc for doc, _ in batch], ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                code = error.get("code")
                failed[int(error["index"])] = (
                    None if code == DUPLICATE_KEY else OperationFailure(str(error.get("errmsg")))
                )
        except Exception as exc:  # the database is away: every insert of the batch failed
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for index, (_, future) in enumerate(batch):
            if future.done():
                continue
            if index not in failed:
                future.set_result(True)
            elif failed[index] is None:
                future.set_result(False)
            else:
                future.set_exception(failed[index])  # type: ignore[arg-type]


class Repository:
    def __init__(self, db: MotorDatabase, insert_window_s: float = 0.0) -> None:
        self.db = db
        self.alerts = db[ALERTS]
        self.claims = db["claims"]
        self._claims_batch = InsertBatcher(self.claims, window_s=insert_window_s)
        self._alerts_batch = InsertBatcher(self.alerts, window_s=insert_window_s)
        # case id -> next_due_at of the active alerts this process wrote or read
        self.timers: dict[str, datetime] = {}

    def track(self, state: AlertState) -> None:
        """Remember (or forget) an alert's timer as this process last saw it."""
        if state.status in ACTIVE and state.next_due_at is not None:
            self.timers[state.case_id] = state.next_due_at
        else:
            self.timers.pop(state.case_id, None)

    def _track_fields(self, case_id: str, fields: dict[str, Any]) -> None:
        if "status" in fields and fields["status"] not in {s.value for s in ACTIVE}:
            self.timers.pop(case_id, None)
        elif "next_due_at" in fields:
            due = fields["next_due_at"]
            if due is None:
                self.timers.pop(case_id, None)
            else:
                self.timers[case_id] = due

    # ------------------------------------------------------------------ outbox
    async def stash_outgoing(self, outs: list[Outgoing], now: datetime) -> None:
        """Keep records the broker did not take, to publish them later (nothing is dropped)."""
        if not outs:
            return
        await self.db[OUTBOX].insert_many(
            [
                {
                    "_id": new_event_id(),
                    "topic": o.topic,
                    "key": o.key,
                    "value": o.value.decode("utf-8"),
                    "at": now,
                }
                for o in outs
            ]
        )

    async def stashed_outgoing(self, limit: int = 500) -> list[tuple[str, Outgoing]]:
        """The oldest stashed records (their ids, to delete once the broker took them)."""
        cursor = self.db[OUTBOX].find({}).sort("_id", 1).limit(limit)
        return [
            (str(d["_id"]), Outgoing(d["topic"], d["value"].encode("utf-8"), key=d.get("key")))
            async for d in cursor
        ]

    async def drop_outgoing(self, ids: list[str]) -> None:
        for record_id in ids:  # one by one: FerretDB scans for `_id: {$in: ...}`
            await self.db[OUTBOX].delete_one({"_id": record_id})

    async def ensure_indexes(self) -> None:
        # One index per command: FerretDB 1.24 panics (connection closed) on a createIndexes
        # that lists several indexes of a collection when they already exist.
        for spec in INDEXES:
            await ensure_indexes(self.db, [spec])

    # ------------------------------------------------------------------ alerts
    async def create_alert(self, state: AlertState, now: datetime) -> tuple[bool, AlertState]:
        """Insert the alert; on a redelivery return the stored one instead (created=False)."""
        doc = state.to_doc()
        doc["updated_at"] = now
        if await self._alerts_batch.insert(doc):
            self.track(state)
            return True, state
        existing = await self.get_alert(state.case_id)
        if existing is None:  # deleted in between (cleanup): try once more
            await self.alerts.insert_one(doc)
            self.track(state)
            return True, state
        return False, existing

    async def replace_alert(self, state: AlertState, now: datetime) -> None:
        doc = state.to_doc()
        doc["updated_at"] = now
        await self.alerts.replace_one({"_id": state.case_id}, doc, upsert=True)
        self.track(state)

    async def get_alert(self, case_id: str) -> AlertState | None:
        doc = await self.alerts.find_one({"_id": case_id})
        if doc is None:
            self.timers.pop(case_id, None)
            return None
        state = AlertState.from_doc(doc)
        self.track(state)
        return state

    async def update_alert(self, case_id: str, now: datetime, **fields: Any) -> None:
        values = {k: (v.value if hasattr(v, "value") else v) for k, v in fields.items()}
        await self.alerts.update_one({"_id": case_id}, {"$set": {**values, "updated_at": now}})
        self._track_fields(case_id, values)

    async def sweep(self, now: datetime, limit: int) -> tuple[list[AlertState], dict[str, int]]:
        """One read of every open alert: the due ones (oldest timer first) and the gauge counts.

        The due alerts of every replica (or written before a restart) and the unacknowledged
        count per priority come from the same read of the open alerts' `status`, `priority`
        and timer, so the database reads the collection once per sweep instead of once for the
        timers and once more for an aggregate (on FerretDB each is a scan of the collection:
        ~2 s apiece at 15,000 open alerts). The due alerts are then read whole by `_id`, and
        every open alert's timer is remembered (`timers`), so the ticks until the next sweep
        read it by `_id` when it falls due, whichever replica wrote it.
        """
        statuses = sorted({s.value for s in (*ACTIVE, *UNACKNOWLEDGED)})
        unacknowledged = {s.value for s in UNACKNOWLEDGED}
        active = {s.value for s in ACTIVE}
        counts: dict[str, int] = {}
        due: list[tuple[datetime, str]] = []
        cursor = self.alerts.find(
            {"status": {"$in": statuses}},
            projection={"status": 1, "priority": 1, "next_due_at": 1},
        )
        async for doc in cursor:
            status = doc.get("status")
            if status in unacknowledged:
                priority = str(doc.get("priority"))
                counts[priority] = counts.get(priority, 0) + 1
            next_due = doc.get("next_due_at")
            if status in active and next_due is not None:
                at = ensure_utc(next_due)
                # Known from now on: the ticks between sweeps read it by `_id` when it is due.
                self.timers[str(doc["_id"])] = at
                if at <= now:
                    due.append((at, str(doc["_id"])))
        due.sort()
        return await self._read_due([case_id for _, case_id in due[:limit]], now), counts

    async def due_tracked(self, now: datetime, limit: int) -> list[AlertState]:
        """The due alerts among the timers this process knows, read by `_id` (no scan).

        The stored alert decides: one another process moved on since is not returned (and its
        timer here is corrected).
        """
        ids = sorted((due, case_id) for case_id, due in self.timers.items() if due <= now)
        return await self._read_due([case_id for _, case_id in ids[:limit]], now)

    async def _read_due(self, case_ids: list[str], now: datetime) -> list[AlertState]:
        """Read these alerts by `_id`; keep those still active and due (the stored alert
        decides: one another process moved on since is dropped, and its timer corrected)."""
        states = await asyncio.gather(*(self.get_alert(case_id) for case_id in case_ids))
        return [
            s
            for s in states
            if s is not None
            and s.status in ACTIVE
            and s.next_due_at is not None
            and s.next_due_at <= now
        ]

    # ------------------------------------------------------------------ claims
    async def claim(self, key: str, now: datetime, **fields: Any) -> bool:
        return await claim(self.db, PREFIX + key, service="notifier", at=now, **fields)

    async def claim_batched(self, key: str, now: datetime, **fields: Any) -> bool:
        """`claim` for the hot path (deliveries): the same unique insert into `claims`, but
        grouped with concurrent ones (see InsertBatcher)."""
        return await self._claims_batch.insert(
            {"_id": PREFIX + key, "service": "notifier", "at": now, **fields}
        )

    async def release(self, key: str) -> None:
        await release(self.db, PREFIX + key)

    async def get_claim(self, key: str) -> dict[str, Any] | None:
        return await self.claims.find_one({"_id": PREFIX + key})

    async def take_over(self, key: str, stale_at: datetime, now: datetime, **fields: Any) -> bool:
        """Replace a claim whose owner died mid-work (its `at` is `stale_at`) with ours."""
        result = await self.claims.delete_one({"_id": PREFIX + key, "at": stale_at})
        if result.deleted_count != 1:
            return False
        return await self.claim(key, now, **fields)

    # ------------------------------------------------------------------ provider tokens
    async def load_tokens(self, provider: str) -> dict[str, Any] | None:
        return await self.db[TOKENS].find_one({"_id": provider})

    async def save_tokens(self, provider: str, tokens: dict[str, Any]) -> None:
        await self.db[TOKENS].replace_one(
            {"_id": provider}, {"_id": provider, **tokens}, upsert=True
        )

    # ------------------------------------------------------------------ housekeeping
    async def expire(self, cutoff: datetime) -> int:
        """The explicit TTL (FerretDB has none): old claims and finished alerts go."""
        done = await self.claims.delete_many({"service": "notifier", "at": {"$lt": cutoff}})
        old = await self.alerts.delete_many(
            {"status": {"$nin": [s.value for s in ACTIVE]}, "updated_at": {"$lt": cutoff}}
        )
        return int(done.deleted_count) + int(old.deleted_count)
