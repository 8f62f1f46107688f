"""MongoDB access for the dispatcher (motor), within what FerretDB 1.24 and MongoDB both support.

Collections:

* `cases` — one document per case (`_id` = `HUE-20240124-0042`), with a `version` that every
  change bumps; the unique index on `opened_by` (the opening event id) means one event can
  never open two cases.
* `decisions` — one document per triaged event (`_id` = event id), written after the case and
  timeline writes it implies: what was published (JSON text, re-published byte for byte on
  redelivery) and the fields the daily statistics group by. Reports of a case are its decisions.
* `timeline` — insert-only entries (`case_id`, `at`, `type`, `actor`, `text`, `data`) with
  deterministic ids, so re-applying an event never duplicates an entry.
* `directives` — the Director's directives with their report-back deadlines.
* `outbox` — case events recorded with the change that caused them and deleted once the broker
  acknowledged them (a failed publish is retried by the maintenance loop).
* `corrections` — triage corrections by the Staff Office (training data for the classifier).
* `shift_overrides` — on-call overrides made at run time, applied on top of the YAML rosters.
* `signed_out_sessions` — console sessions signed out (`_id` = the session id), kept until
  their cookie would have expired: every console replica's requests carry their session id,
  and the ops API refuses one found here.
* `claims`, `sequences` — shared with `hotline.mongo`: every exactly-once decision is a claim
  (FerretDB updates are not atomic under concurrency, unique inserts are).

Hot-path writes are batched `insert_many(ordered=False)` calls whose duplicate-key errors are
expected on redelivery; the hot path does no reads (FerretDB's SQLite backend scans a whole
collection for any query, so reads are kept to the API, start-up and periodic refreshes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError

from hotline.mongo import IndexSpec, MotorDatabase, claim, ensure_indexes

CASES = "cases"
DECISIONS = "decisions"
TIMELINE = "timeline"
DIRECTIVES = "directives"
OUTBOX = "outbox"
RAISES = "priority_raises"
CORRECTIONS = "corrections"
SHIFT_OVERRIDES = "shift_overrides"
CLAIMS = "claims"
SEQUENCES = "sequences"
SIGNED_OUT = "signed_out_sessions"

DUPLICATE_KEY = 11000

INDEXES = [
    IndexSpec(CASES, [("opened_by", ASCENDING)], unique=True, name="opened_by_unique"),
    IndexSpec(CASES, [("opened_at", DESCENDING)], name="opened_at"),
    IndexSpec(
        CASES,
        [("state", ASCENDING), ("priority", ASCENDING), ("opened_at", DESCENDING)],
        name="state_priority_opened",
    ),
    IndexSpec(
        CASES,
        [("responsible_unit", ASCENDING), ("state", ASCENDING), ("opened_at", DESCENDING)],
        name="unit_state_opened",
    ),
    IndexSpec(CASES, [("category", ASCENDING), ("opened_at", DESCENDING)], name="category_opened"),
    IndexSpec(
        CASES, [("assignee.person_id", ASCENDING), ("state", ASCENDING)], name="assignee_state"
    ),
    # GET /cases filters without a state (the list is sorted by opened_at).
    IndexSpec(CASES, [("priority", ASCENDING), ("opened_at", DESCENDING)], name="priority_opened"),
    IndexSpec(CASES, [("location", ASCENDING), ("opened_at", DESCENDING)], name="location_opened"),
    IndexSpec(CASES, [("kind", ASCENDING), ("opened_at", DESCENDING)], name="kind_opened"),
    # GET /stats/daily: cases received that day (time to acknowledge), resolved that day.
    IndexSpec(CASES, [("received_at", ASCENDING)], name="received_at"),
    IndexSpec(CASES, [("resolved_day", ASCENDING)], name="resolved_day"),
    IndexSpec(DECISIONS, [("day", ASCENDING)], name="day"),
    IndexSpec(SIGNED_OUT, [("until", ASCENDING)], name="until"),
    IndexSpec(DECISIONS, [("case_id", ASCENDING), ("at", ASCENDING)], name="case_at"),
    IndexSpec(DECISIONS, [("at", ASCENDING)], name="at"),
    IndexSpec(TIMELINE, [("case_id", ASCENDING), ("at", ASCENDING)], name="case_at"),
    IndexSpec(DIRECTIVES, [("state", ASCENDING), ("deadline", ASCENDING)], name="state_deadline"),
    IndexSpec(DIRECTIVES, [("case_id", ASCENDING)], name="case"),
    # GET /directives?unit=[&state=] (sorted by deadline).
    IndexSpec(
        DIRECTIVES,
        [("unit", ASCENDING), ("state", ASCENDING), ("deadline", ASCENDING)],
        name="unit_state_deadline",
    ),
    IndexSpec(OUTBOX, [("at", ASCENDING)], name="at"),
    IndexSpec(CORRECTIONS, [("at", ASCENDING)], name="at"),
    IndexSpec(SHIFT_OVERRIDES, [("end", ASCENDING)], name="end"),
]


async def insert_ignoring_duplicates(
    db: MotorDatabase, collection: str, docs: Sequence[Mapping[str, Any]]
) -> set[int]:
    """Insert every document that is not there yet; return the indexes that already existed."""
    if not docs:
        return set()
    try:
        await db[collection].insert_many([dict(d) for d in docs], ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {int(e["index"]) for e in errors}
    return set()


class Repository:
    """Every database operation the dispatcher makes; no domain decisions here."""

    def __init__(self, db: MotorDatabase) -> None:
        self.db = db
        self._next_number: dict[str, int] = {}

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.db, INDEXES)

    # ------------------------------------------------------------------ claims

    async def claim_many(self, keys: Sequence[str], at: datetime) -> set[str]:
        """Claim each key; return those this call won (a key twice in `keys` wins once)."""
        dups = await insert_ignoring_duplicates(
            self.db, CLAIMS, [{"_id": k, "at": at} for k in keys]
        )
        return {k for i, k in enumerate(keys) if i not in dups}

    async def claim(self, key: str, at: datetime, **fields: Any) -> bool:
        return await claim(self.db, key, at=at, **fields)

    async def claim_time(self, key: str) -> datetime | None:
        doc = await self.db[CLAIMS].find_one({"_id": key}, projection={"at": 1})
        return doc.get("at") if doc else None

    async def claim_times(self, keys: Sequence[str]) -> dict[str, datetime]:
        """When each of these claims was made (claims that do not exist are left out)."""
        cursor = self.db[CLAIMS].find({"_id": {"$in": list(keys)}}, projection={"at": 1})
        return {str(d["_id"]): d["at"] async for d in cursor}

    async def take_over(self, key: str, stale_at: datetime | None, now: datetime) -> bool:
        """Replace a claim made at `stale_at` (None: it is gone) by one made now; False when
        another process replaced or made it first."""
        if stale_at is not None:
            result = await self.db[CLAIMS].delete_one({"_id": key, "at": stale_at})
            if result.deleted_count != 1:
                return False
        return bool(await self.claim_many([key], now))

    async def expire_claims(self, prefix: str, before: datetime) -> int:
        result = await self.db[CLAIMS].delete_many(
            {"_id": {"$regex": f"^{prefix}"}, "at": {"$lt": before}}
        )
        return int(result.deleted_count)

    # ------------------------------------------------------------------ console sessions

    async def sign_out_session(self, session_id: str, until: datetime, person_id: str) -> None:
        """Remember a console session as signed out until `until` (an insert by `_id`: signing
        out twice is once)."""
        await insert_ignoring_duplicates(
            self.db, SIGNED_OUT, [{"_id": session_id, "until": until, "person_id": person_id}]
        )

    async def session_signed_out(self, session_id: str) -> bool:
        """One read by `_id` (the only filter FerretDB pushes down), on every console request."""
        found = await self.db[SIGNED_OUT].find_one({"_id": session_id}, projection={"_id": 1})
        return found is not None

    async def expire_signed_out_sessions(self, now: datetime) -> int:
        """Forget the sessions whose cookies have expired anyway."""
        result = await self.db[SIGNED_OUT].delete_many({"until": {"$lt": now}})
        return int(result.deleted_count)

    # ------------------------------------------------------------------ case numbers

    async def allocate_numbers(self, sequence: str, count: int) -> list[int]:
        """`count` unused numbers of a named sequence (compatible with hotline.mongo.next_sequence).

        Each number is a unique `sequences` document, so two replicas never share one; this
        process remembers where it stopped, so only its first allocation of a day reads.
        """
        if count <= 0:
            return []
        n = self._next_number.get(sequence)
        if n is None:
            n = await self._sequence_head(sequence)
        got: list[int] = []
        misses = 0
        while len(got) < count:
            candidates = list(range(n, n + count - len(got)))
            dups = await insert_ignoring_duplicates(
                self.db,
                SEQUENCES,
                [{"_id": f"{sequence}:{k:010d}", "name": sequence, "n": k} for k in candidates],
            )
            got.extend(k for i, k in enumerate(candidates) if i not in dups)
            n = candidates[-1] + 1
            if len(dups) == len(candidates):
                misses += 1
                if misses >= 2:  # another replica ran ahead: jump to the head
                    n = max(n, await self._sequence_head(sequence))
        self._next_number[sequence] = n
        return got

    async def _sequence_head(self, sequence: str) -> int:
        last = await self.db[SEQUENCES].find_one(
            {"name": sequence}, sort=[("n", DESCENDING)], projection={"n": 1}
        )
        return int(last["n"]) + 1 if last else 1

    # ------------------------------------------------------------------ decisions (hot path)

    async def insert_decisions(self, docs: Sequence[Mapping[str, Any]]) -> set[int]:
        return await insert_ignoring_duplicates(self.db, DECISIONS, docs)

    async def insert_cases(self, docs: Sequence[Mapping[str, Any]]) -> set[int]:
        return await insert_ignoring_duplicates(self.db, CASES, docs)

    async def insert_timeline(self, entries: Sequence[Mapping[str, Any]]) -> set[int]:
        return await insert_ignoring_duplicates(self.db, TIMELINE, entries)

    async def load_decisions(self, event_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(event_ids)
        if not ids:
            return {}
        cursor = self.db[DECISIONS].find({"_id": {"$in": ids}})
        return {str(d["_id"]): d async for d in cursor}

    async def cases_opened_by(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        cursor = self.db[CASES].find({"opened_by": {"$in": list(event_ids)}})
        return {str(d["opened_by"]): d async for d in cursor}

    # ------------------------------------------------------------------ cases

    async def get_case(self, case_id: str) -> dict[str, Any] | None:
        return await self.db[CASES].find_one({"_id": case_id})

    async def find_cases(
        self, query: Mapping[str, Any], *, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        cursor = (
            self.db[CASES]
            .find(dict(query), projection={"tokens": 0})
            .sort([("opened_at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(limit)
        )
        items = [d async for d in cursor]
        total = await self.db[CASES].count_documents(dict(query))
        return items, total

    async def case_ids_assigned_to(self, person_id: str) -> set[str]:
        """The cases assigned to a person now (a call-taker's in the message feed)."""
        cursor = self.db[CASES].find({"assignee.person_id": person_id}, projection={"_id": 1})
        return {str(d["_id"]) async for d in cursor}

    async def update_case(
        self, case_id: str, version: int, fields: Mapping[str, Any], at: datetime
    ) -> bool:
        """Apply `fields` if the case is still at `version`; exactly one concurrent caller wins.

        The winner is decided by claiming `case:<id>:v<version+1>` (atomic on FerretDB and
        MongoDB); the update itself is then conditional on the version.
        """
        if not await claim(self.db, f"case:{case_id}:v{version + 1}", at=at):
            return False
        await self.db[CASES].update_one(
            {"_id": case_id, "version": version},
            {"$set": {**fields, "version": version + 1, "updated_at": at}},
        )
        return True

    async def skip_version(self, case_id: str, version: int, at: datetime) -> None:
        """Unstick a case whose next version was claimed by a writer that died before writing."""
        await self.db[CASES].update_one(
            {"_id": case_id, "version": version},
            {"$set": {"version": version + 1, "updated_at": at}},
        )

    async def record_priority_raises(
        self, raises: Sequence[tuple[str, str, str, datetime]]
    ) -> None:
        """Queue (case id, priority, cause event id, at) raises; `apply_priority_raises` sets them.

        The hot path only inserts: one batched insert for the whole poll, where the updates
        would be one command per case (and on an unpatched FerretDB 1.24 a scan each, see
        deploy/local/stack.py).
        """
        await insert_ignoring_duplicates(
            self.db,
            RAISES,
            [
                {"_id": f"{case_id}:{cause}", "case_id": case_id, "priority": p, "at": at}
                for case_id, p, cause, at in raises
            ],
        )

    async def apply_priority_raises(self, limit: int = 500) -> int:
        """Set the queued priorities (only ever more urgent), then forget them."""
        pending = [d async for d in self.db[RAISES].find({}).sort([("at", 1)]).limit(limit)]
        for doc in pending:
            # "P1" < "P2" < "P3" < "P4": `$min` keeps the more urgent of the two, atomically,
            # and a filter on `_id` alone is the only one FerretDB answers without reading
            # every case (a filter on `_id` and `priority` cost a scan of the collection per
            # raise: ~1 s of database CPU each at 4,000 cases).
            await self.db[CASES].update_one(
                {"_id": doc["case_id"]}, {"$min": {"priority": str(doc["priority"])}}
            )
        if pending:
            await self.db[RAISES].delete_many({"_id": {"$in": [d["_id"] for d in pending]}})
        return len(pending)

    async def timeline(self, case_id: str) -> list[dict[str, Any]]:
        cursor = self.db[TIMELINE].find({"case_id": case_id}).sort([("at", 1), ("_id", 1)])
        return [d async for d in cursor]

    async def reports(self, case_id: str) -> list[dict[str, Any]]:
        """The decisions that put a citizen's report on the case (opened, merged, follow-up)."""
        cursor = (
            self.db[DECISIONS]
            .find(
                {
                    "case_id": case_id,
                    "action": {"$in": ["new_case", "merged", "followup", "callback"]},
                },
                projection={"outputs": 0},
            )
            .sort([("at", 1)])
        )
        return [d async for d in cursor]

    async def open_cases(self) -> list[dict[str, Any]]:
        """Every open case, with the fields the gauges, the per-officer loads and the merge
        index need (one read of the collection serves all three)."""
        cursor = self.db[CASES].find(
            {"state": {"$in": ["new", "assigned", "acknowledged"]}},
            projection={
                "responsible_unit": 1,
                "priority": 1,
                "state": 1,
                "assignee.person_id": 1,
                "assigned_at": 1,
                "category": 1,
                "location": 1,
                "tokens": 1,
                "localities": 1,
                "addresses": 1,
                "opened_at": 1,
                "received_at": 1,
                "last_report_at": 1,
                "reporter_key": 1,
                "kind": 1,
            },
        )
        return [d async for d in cursor]

    async def recent_reports(self, since: datetime) -> list[dict[str, Any]]:
        cursor = self.db[DECISIONS].find(
            {"at": {"$gte": since}, "case_id": {"$ne": None}},
            projection={
                "case_id": 1,
                "reporter_key": 1,
                "at": 1,
                "priority": 1,
                "location": 1,
                "locality": 1,
                "addresses": 1,
            },
        )
        return [d async for d in cursor]

    async def cases_by_ids(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        cursor = self.db[CASES].find({"_id": {"$in": list(ids)}})
        return [d async for d in cursor]

    # ------------------------------------------------------------------ directives

    async def insert_directive(self, doc: Mapping[str, Any]) -> None:
        await self.db[DIRECTIVES].insert_one(dict(doc))

    async def directives_for(self, case_id: str) -> list[dict[str, Any]]:
        cursor = self.db[DIRECTIVES].find({"case_id": case_id}).sort([("at", 1)])
        return [d async for d in cursor]

    async def get_directive(self, directive_id: str) -> dict[str, Any] | None:
        return await self.db[DIRECTIVES].find_one({"_id": directive_id})

    async def update_directive(self, directive_id: str, fields: Mapping[str, Any]) -> None:
        await self.db[DIRECTIVES].update_one({"_id": directive_id}, {"$set": dict(fields)})

    async def open_directives(self) -> list[dict[str, Any]]:
        cursor = self.db[DIRECTIVES].find({"state": "open"}).sort([("deadline", 1)])
        return [d async for d in cursor]

    async def find_directives(
        self, query: Mapping[str, Any], limit: int, *, latest_reported: bool = False
    ) -> list[dict[str, Any]]:
        """Directives by deadline, the nearest (or longest overdue) first; or, with
        `latest_reported`, by report-back, the latest first."""
        order = [("reported_at", -1)] if latest_reported else [("deadline", 1)]
        cursor = self.db[DIRECTIVES].find(dict(query)).sort(order).limit(limit)
        return [d async for d in cursor]

    # ------------------------------------------------------------------ outbox

    async def outbox_add(self, records: Sequence[Mapping[str, Any]]) -> None:
        await insert_ignoring_duplicates(self.db, OUTBOX, records)

    async def outbox_pending(self, older_than: datetime, limit: int = 500) -> list[dict[str, Any]]:
        cursor = self.db[OUTBOX].find({"at": {"$lt": older_than}}).sort([("at", 1)]).limit(limit)
        return [d async for d in cursor]

    async def outbox_remove(self, ids: Sequence[str]) -> None:
        if ids:
            await self.db[OUTBOX].delete_many({"_id": {"$in": list(ids)}})

    # ------------------------------------------------------------------ statistics

    async def daily_counts(self, day: str) -> list[dict[str, Any]]:
        """Decisions of a local day grouped by action, channel, category, unit, priority,
        district and locality."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"day": day}},
            {
                "$group": {
                    "_id": {
                        "action": "$action",
                        "channel": "$channel",
                        "category": "$category",
                        "unit": "$unit",
                        "priority": "$priority",
                        "location": "$location",
                        "locality": "$locality",
                    },
                    "n": {"$sum": 1},
                }
            },
        ]
        return [d async for d in self.db[DECISIONS].aggregate(pipeline)]

    async def count_cases(self, query: Mapping[str, Any]) -> int:
        return int(await self.db[CASES].count_documents(dict(query)))

    async def cases_between(
        self, field: str, start: datetime, end: datetime
    ) -> list[dict[str, Any]]:
        cursor = self.db[CASES].find(
            {field: {"$gte": start, "$lt": end}},
            projection={
                "responsible_unit": 1,
                "priority": 1,
                "category": 1,
                "state": 1,
                "kind": 1,
                "received_at": 1,
                "acknowledged_at": 1,
            },
        )
        return [d async for d in cursor]

    async def day_decisions(self, day: str) -> list[dict[str, Any]]:
        """The day's decisions, few fields: for the hour-by-hour chart."""
        cursor = self.db[DECISIONS].find({"day": day}, projection={"at": 1, "action": 1})
        return [d async for d in cursor]

    # ------------------------------------------------------------------ messages (console feed)

    async def recent_decisions(self, query: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
        """The newest decisions matching `query` (every inbound message, greetings included)."""
        cursor = (
            self.db[DECISIONS]
            .find(dict(query))
            .sort([("at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [d async for d in cursor]

    async def get_decision(self, event_id: str) -> dict[str, Any] | None:
        return await self.db[DECISIONS].find_one({"_id": event_id})

    async def move_reports(self, event_ids: Sequence[str], case_id: str, **marks: Any) -> None:
        """Put reports (decisions) on another case (merge, split)."""
        if event_ids:
            await self.db[DECISIONS].update_many(
                {"_id": {"$in": list(event_ids)}}, {"$set": {"case_id": case_id, **marks}}
            )

    async def move_directives(self, from_case: str, to_case: str) -> None:
        await self.db[DIRECTIVES].update_many(
            {"case_id": from_case, "state": "open"}, {"$set": {"case_id": to_case}}
        )

    async def timeline_entry(self, entry_id: str) -> dict[str, Any] | None:
        return await self.db[TIMELINE].find_one({"_id": entry_id})

    # ------------------------------------------------------------------ corrections

    async def insert_correction(self, doc: Mapping[str, Any]) -> None:
        await self.db[CORRECTIONS].insert_one(dict(doc))

    async def mark_correction(self, correction_id: str, **fields: Any) -> None:
        await self.db[CORRECTIONS].update_one({"_id": correction_id}, {"$set": fields})

    async def corrections(self, since: datetime | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"at": {"$gte": since}} if since else {}
        cursor = self.db[CORRECTIONS].find(query).sort([("at", ASCENDING), ("_id", ASCENDING)])
        return [d async for d in cursor]

    # ------------------------------------------------------------------ shift overrides

    async def insert_shift_override(self, doc: Mapping[str, Any]) -> None:
        await self.db[SHIFT_OVERRIDES].insert_one(dict(doc))

    async def shift_overrides(self, ending_after: datetime | None = None) -> list[dict[str, Any]]:
        """Overrides not cancelled (and, with `ending_after`, not over yet)."""
        query: dict[str, Any] = {"cancelled_at": None}
        if ending_after is not None:
            query["end"] = {"$gt": ending_after}
        cursor = self.db[SHIFT_OVERRIDES].find(query).sort([("start", ASCENDING)])
        return [d async for d in cursor]

    async def get_shift_override(self, override_id: str) -> dict[str, Any] | None:
        return await self.db[SHIFT_OVERRIDES].find_one({"_id": override_id})

    async def cancel_shift_override(
        self, override_id: str, at: datetime, by: Mapping[str, Any]
    ) -> None:
        await self.db[SHIFT_OVERRIDES].update_one(
            {"_id": override_id}, {"$set": {"cancelled_at": at, "cancelled_by": dict(by)}}
        )


def stale_before(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=seconds)
