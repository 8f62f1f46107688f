"""MongoDB access through motor, limited to what FerretDB 1.24 and MongoDB both support.

See ../shared/FERRETDB.md: no TTL indexes, transactions, change streams or `$lookup` on the
local database, so every write is atomic on one document (unique index, conditional update,
`find_one_and_update`) and old documents are expired by an explicit periodic delete.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase
from pymongo import ASCENDING, IndexModel, monitoring
from pymongo.errors import DuplicateKeyError

from hotline.logging import get_logger
from hotline.metrics import MONGO_COMMAND_SECONDS

log = get_logger(__name__)

MotorDatabase = AsyncIOMotorDatabase[dict[str, Any]]
MotorClient = AsyncIOMotorClient[dict[str, Any]]


class CommandTimer(monitoring.CommandListener):
    """Times every database round trip into `hotline_mongo_command_seconds`.

    Operators see which collection and command the database time goes to (the bench reads it to
    attribute FerretDB's cost); labels are the command name and the collection, both from the
    code's fixed set, never a filter or a value.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._collections: dict[tuple[Any, int], str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        if event.command_name == "getMore":
            target = event.command.get("collection")
        if isinstance(target, str):
            self._collections[(event.connection_id, event.request_id)] = target[:64]

    def _observe(self, event: Any, outcome: str) -> None:
        collection = self._collections.pop((event.connection_id, event.request_id), "")
        MONGO_COMMAND_SECONDS.labels(self.service, event.command_name, collection, outcome).observe(
            event.duration_micros / 1e6
        )

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._observe(event, "ok")

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._observe(event, "error")


def make_client(uri: str, app_name: str, **overrides: Any) -> MotorClient:
    """A motor client with bounded timeouts, so an unavailable database fails fast.

    Every command is timed into `hotline_mongo_command_seconds` under the service's name
    (`app_name` without its `hotline-` prefix).
    """
    options: dict[str, Any] = {
        "event_listeners": [CommandTimer(app_name.removeprefix("hotline-"))],
        "appname": app_name,
        "serverSelectionTimeoutMS": 3_000,
        "connectTimeoutMS": 3_000,
        "socketTimeoutMS": 10_000,
        "retryWrites": False,  # FerretDB has no retryable-write sessions
        "tz_aware": True,
        "maxPoolSize": 50,
    }
    options.update(overrides)
    return AsyncIOMotorClient(uri, **options)


async def mongo_ready(client: MotorClient, timeout_s: float = 2.0) -> None:
    """Readiness: the server answers `ping`."""
    async with asyncio.timeout(timeout_s):
        await client.admin.command("ping")


async def is_ferretdb(client: MotorClient) -> bool:
    """FerretDB identifies itself in `buildInfo`; production MongoDB does not."""
    info = await client.admin.command("buildInfo")
    return "ferretdb" in info or "ferretdbVersion" in info


@dataclass(frozen=True)
class IndexSpec:
    """An index a repository needs. `expire_after` uses a TTL index on real MongoDB only."""

    collection: str
    keys: list[tuple[str, int]]
    unique: bool = False
    name: str | None = None
    expire_after: timedelta | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def model(self, allow_ttl: bool) -> IndexModel:
        options: dict[str, Any] = dict(self.extra)
        if self.unique:
            options["unique"] = True
        if self.name:
            options["name"] = self.name
        if self.expire_after is not None and allow_ttl:
            options["expireAfterSeconds"] = int(self.expire_after.total_seconds())
        return IndexModel(self.keys, **options)


BASE_INDEXES = [IndexSpec("sequences", [("name", ASCENDING), ("n", ASCENDING)], name="name_n")]


async def ensure_indexes(db: MotorDatabase, specs: list[IndexSpec]) -> None:
    """Create the indexes that do not exist yet (plus the shared sequences index).

    Only missing indexes are sent, one `createIndexes` per index: FerretDB 1.24 panics and
    drops the connection on a `createIndexes` listing several indexes that all exist already
    (a service restart), so the idempotence is ours, not the server's. TTL only on MongoDB.
    """
    specs = [*BASE_INDEXES, *specs]
    allow_ttl = not await is_ferretdb(db.client)
    existing: dict[str, set[str]] = {}
    for spec in specs:
        if spec.collection not in existing:
            names: set[str] = set()
            async for index in db[spec.collection].list_indexes():
                names.add(str(index["name"]))
            existing[spec.collection] = names
        model = spec.model(allow_ttl)
        name = str(model.document["name"])
        if name in existing[spec.collection]:
            continue
        await db[spec.collection].create_indexes([model])
        existing[spec.collection].add(name)


async def expire_older_than(
    db: MotorDatabase, collection: str, field_name: str, cutoff: datetime
) -> int:
    """The explicit TTL: delete documents whose `field_name` is older than `cutoff`."""
    result = await db[collection].delete_many({field_name: {"$lt": cutoff}})
    return int(result.deleted_count)


async def claim(db: MotorDatabase, key: str, **fields: Any) -> bool:
    """Claim `key` once across every process: True for the one caller whose insert wins.

    FerretDB 1.24 (SQLite) does not make `update_one`/`find_one_and_update` atomic under
    concurrency: two conditional updates of the same document can both report a match, and
    concurrent `$inc`s lose updates (tests/integration/test_mongo.py shows it). Inserts of a
    unique `_id` are atomic on FerretDB and MongoDB alike, so every "exactly once" decision in
    Hotline (an escalation step, a courtesy reply per day, a case number) is a claim document.
    """
    try:
        await db["claims"].insert_one({"_id": key, **fields})
    except DuplicateKeyError:
        return False
    return True


async def release(db: MotorDatabase, key: str) -> None:
    """Give a claim back (e.g. the work it guarded failed and must be retried)."""
    await db["claims"].delete_one({"_id": key})


async def next_sequence(db: MotorDatabase, name: str) -> int:
    """The next number of a named sequence (1, 2, 3, ...), unique across processes.

    Allocated by inserting `<name>:<n>` (see `claim` for why not `$inc`): start from the highest
    allocated number and step past any number another process took meanwhile.
    """
    sequences = db["sequences"]
    last = await sequences.find_one({"name": name}, sort=[("n", -1)], projection={"n": 1})
    n = int(last["n"]) + 1 if last else 1
    for _ in range(1000):
        try:
            await sequences.insert_one({"_id": f"{name}:{n:010d}", "name": name, "n": n})
            return n
        except DuplicateKeyError:
            n += 1
    raise RuntimeError(f"sequence {name!r}: no free number after 1000 attempts")


__all__ = [
    "ASCENDING",
    "CommandTimer",
    "IndexSpec",
    "MotorClient",
    "MotorDatabase",
    "claim",
    "ensure_indexes",
    "expire_older_than",
    "is_ferretdb",
    "make_client",
    "mongo_ready",
    "next_sequence",
    "release",
]
