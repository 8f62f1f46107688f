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
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from hotline.mongo import ASCENDING, IndexSpec, MotorDatabase, claim, ensure_indexes, release

from .models import ACTIVE, UNACKNOWLEDGED, AlertState

PREFIX = "ntf:"
ALERTS = "notifier_alerts"
TOKENS = "notifier_provider_tokens"

INDEXES = [
    IndexSpec(ALERTS, [("status", ASCENDING), ("next_due_at", ASCENDING)], name="status_due"),
    IndexSpec(ALERTS, [("updated_at", ASCENDING)], name="updated_at"),
]


class Repository:
    def __init__(self, db: MotorDatabase) -> None:
        self.db = db
        self.alerts = db[ALERTS]
        self.claims = db["claims"]

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
        try:
            await self.alerts.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.get_alert(state.case_id)
            if existing is None:  # deleted in between (cleanup): try once more
                await self.alerts.insert_one(doc)
                return True, state
            return False, existing
        return True, state

    async def replace_alert(self, state: AlertState, now: datetime) -> None:
        doc = state.to_doc()
        doc["updated_at"] = now
        await self.alerts.replace_one({"_id": state.case_id}, doc, upsert=True)

    async def get_alert(self, case_id: str) -> AlertState | None:
        doc = await self.alerts.find_one({"_id": case_id})
        return AlertState.from_doc(doc) if doc else None

    async def update_alert(self, case_id: str, now: datetime, **fields: Any) -> None:
        values = {k: (v.value if hasattr(v, "value") else v) for k, v in fields.items()}
        await self.alerts.update_one({"_id": case_id}, {"$set": {**values, "updated_at": now}})

    async def due_alerts(self, now: datetime, limit: int) -> list[AlertState]:
        cursor = (
            self.alerts.find(
                {"status": {"$in": [s.value for s in ACTIVE]}, "next_due_at": {"$lte": now}}
            )
            .sort("next_due_at", ASCENDING)
            .limit(limit)
        )
        return [AlertState.from_doc(doc) async for doc in cursor]

    async def unacknowledged_by_priority(self) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"status": {"$in": [s.value for s in UNACKNOWLEDGED]}}},
            {"$group": {"_id": "$priority", "n": {"$sum": 1}}},
        ]
        return {str(d["_id"]): int(d["n"]) async for d in self.alerts.aggregate(pipeline)}

    # ------------------------------------------------------------------ claims
    async def claim(self, key: str, now: datetime, **fields: Any) -> bool:
        return await claim(self.db, PREFIX + key, service="notifier", at=now, **fields)

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
