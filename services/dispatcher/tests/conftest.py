"""Fixtures for the dispatcher's tests: the ops API served in-process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from hotline.clock import ManualClock
from hotline.mongo import MotorDatabase
from hotline_dispatcher.config import Organisation
from hotline_dispatcher.main import Components, build
from hotline_dispatcher.testing import settings_for

ServeApi = Callable[
    [dict[str, Any], Organisation, ManualClock],
    AbstractAsyncContextManager[tuple[Components, httpx.AsyncClient]],
]


@pytest.fixture
def serve_api(
    kafka_bootstrap: str, mongo_uri: str, mongo_db: MotorDatabase, namespace: str
) -> ServeApi:
    """`serve_api(tokens, org, clock)`: a dispatcher of this test's topics and database, built
    without consumers or maintenance, its lifespan running, and an HTTP client on its app."""

    @contextlib.asynccontextmanager
    async def serve(
        tokens: dict[str, Any], org: Organisation, clock: ManualClock
    ) -> AsyncIterator[tuple[Components, httpx.AsyncClient]]:
        settings = settings_for(
            kafka=kafka_bootstrap,
            mongo_uri=mongo_uri,
            database=mongo_db.name,
            namespace=namespace,
            api_tokens=tokens,
        )
        components = build(settings, org, clock, consumers=False, maintenance=False)
        app = components.app
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://dispatcher") as http:
                yield components, http

    return serve
