"""The indexes the ops API's queries need (repository.INDEXES), on the real database."""

from __future__ import annotations

import pytest

from hotline.mongo import MotorDatabase
from hotline_dispatcher.repository import CASES, DECISIONS, DIRECTIVES, INDEXES, Repository

# Fields the ops API filters on by themselves (GET /cases, /stats/daily, /directives):
# each must lead an index (a compound index serves a filter on its first key).
QUERIED = [
    (CASES, "state"),  # /cases?state=, open_only
    (CASES, "responsible_unit"),  # /cases?unit=
    (CASES, "priority"),  # /cases?priority=
    (CASES, "category"),  # /cases?category=
    (CASES, "location"),  # /cases?location=
    (CASES, "kind"),  # /cases?kind=callback
    (CASES, "assignee.person_id"),  # /cases?assignee=
    (CASES, "opened_at"),  # /cases?opened_from=&opened_to=, and the sort
    (CASES, "received_at"),  # /stats/daily: time to acknowledge
    (CASES, "resolved_day"),  # /stats/daily: resolved that day
    (DECISIONS, "day"),  # /stats/daily: messages by channel, category, unit, ...
    (DIRECTIVES, "state"),  # /directives?state=
    (DIRECTIVES, "unit"),  # /directives?unit=
]


@pytest.mark.parametrize(("collection", "field"), QUERIED)
def test_every_ops_api_filter_leads_an_index(collection: str, field: str) -> None:
    leading = {spec.keys[0][0] for spec in INDEXES if spec.collection == collection}
    assert field in leading


def test_index_specs_are_what_ferretdb_supports() -> None:
    names = [(spec.collection, spec.name) for spec in INDEXES]
    assert len(set(names)) == len(names) and all(name for _, name in names)
    # FerretDB 1.24: single and compound indexes only (no partial, TTL or sparse options).
    assert all(not spec.extra and spec.expire_after is None for spec in INDEXES)


@pytest.mark.integration
async def test_ensure_indexes_creates_them_all_and_is_idempotent(mongo_db: MotorDatabase) -> None:
    repo = Repository(mongo_db)
    await repo.ensure_indexes()
    await repo.ensure_indexes()  # a restart
    for collection in {spec.collection for spec in INDEXES}:
        existing = {i["name"] async for i in mongo_db[collection].list_indexes()}
        wanted = {spec.name for spec in INDEXES if spec.collection == collection}
        assert wanted <= existing, collection
