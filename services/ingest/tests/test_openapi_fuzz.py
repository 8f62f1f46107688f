"""Schemathesis against the app's own OpenAPI schema, over real HTTP to a real ingest process.

Generated requests are signed the provider's way (or carry the desk token), so the fuzzing gets
past authentication into the parsers, the dedup store and the broker. Whatever comes in, the
answer is documented, has the documented shape, and is never a 5xx other than a 503 with
Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pymongo
import pytest
import schemathesis
from aiokafka.admin import AIOKafkaAdminClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hotline import signatures
from hotline.contracts.topics import TopicNames
from hotline.kafka import ensure_topics
from hotline_ingest.app import build_app
from hotline_ingest.settings import IngestSettings

from .conftest import PUBLIC_BASE_URL, Server, free_port, server_process

pytestmark = pytest.mark.integration

SCHEMA = schemathesis.openapi.from_dict(build_app(IngestSettings(environment="test")).openapi())


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics(names)
    finally:
        await admin.close()


@pytest.fixture(scope="module")
def fuzz_server(
    kafka_bootstrap: str, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    namespace = f"fz{uuid.uuid4().hex[:10]}"
    topics = TopicNames.for_namespace(namespace)
    asyncio.run(ensure_topics(kafka_bootstrap, topics))
    database = f"test_{uuid.uuid4().hex[:12]}"
    settings_ = IngestSettings(
        environment="test",
        topic_namespace=namespace,
        kafka_bootstrap_servers=kafka_bootstrap,
        mongodb_uri=mongo_uri,  # type: ignore[arg-type]
        mongodb_database=database,
        public_base_url=PUBLIC_BASE_URL,
        port=free_port(),
    )
    log_dir: Path = tmp_path_factory.mktemp("fuzz")
    env_limits = {"INGEST_WEB_BURST": "1000000", "INGEST_DESK_BURST": "1000000"}
    with contextlib.ExitStack() as stack:
        stack.enter_context(_environ(env_limits))
        server = stack.enter_context(server_process(settings_, log_dir))
        yield server
    asyncio.run(_delete_topics(kafka_bootstrap, topics.all()))
    with contextlib.suppress(Exception):
        pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=3000).drop_database(database)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    import os

    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@pytest.fixture(scope="module")
def fuzz_client() -> Iterator[httpx.Client]:
    # One client for every request: building one per request costs more than the request.
    with httpx.Client() as client:
        yield client


def _signed(case: Any, settings_: IngestSettings) -> tuple[bytes | None, dict[str, str]]:
    """The body as it goes on the wire, and the headers that sign it like the provider would."""
    headers: dict[str, str] = {}
    path = case.path
    if path == "/desk/call-summaries":
        token = next(iter(settings_.desk_tokens.values())).get_secret_value()
        headers["Authorization"] = f"Bearer {token}"
    if case.body is None or type(case.body).__name__ == "NotSet":
        return None, headers
    if case.media_type == "application/x-www-form-urlencoded":
        fields = case.body if isinstance(case.body, dict) else {"value": repr(case.body)}
        body = urlencode({str(k): _form_value(v) for k, v in fields.items()}).encode()
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
        token = settings_.twilio_auth_token.get_secret_value()
        headers[signatures.TWILIO_HEADER] = signatures.twilio_signature(
            PUBLIC_BASE_URL + path, pairs, token
        )
        headers["Content-Type"] = case.media_type
        return body, headers
    if isinstance(case.body, bytes):  # negative generation: raw bytes, whatever they are
        body = case.body
    else:
        # surrogatepass: a lone surrogate goes out as invalid UTF-8, which must be a 400.
        body = json.dumps(case.body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    headers["Content-Type"] = "application/json"
    if path == "/webhooks/zalo":
        data = case.body if isinstance(case.body, dict) else {}
        app_id, stamp = data.get("app_id"), data.get("timestamp")
        if isinstance(app_id, str) and isinstance(stamp, str):
            secret = settings_.zalo_oa_secret_key.get_secret_value()
            headers[signatures.ZALO_HEADER] = signatures.zalo_signature(app_id, body, stamp, secret)
    elif path == "/webhooks/viber":
        secret = settings_.viber_auth_token.get_secret_value()
        headers[signatures.VIBER_HEADER] = signatures.viber_signature(body, secret)
    elif path == "/webhooks/whatsapp":
        secret = settings_.whatsapp_app_secret.get_secret_value()
        headers[signatures.WHATSAPP_HEADER] = signatures.whatsapp_signature(body, secret)
    elif path == "/webhooks/telegram":
        headers[signatures.TELEGRAM_HEADER] = settings_.telegram_secret_token.get_secret_value()
    elif path == "/webhooks/pbx":
        secret = settings_.pbx_secret.get_secret_value()
        headers[signatures.PBX_HEADER] = signatures.pbx_signature(body, secret, int(time.time()))
    return body, headers


def _form_value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@SCHEMA.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_produces_a_server_error(
    case: Any, fuzz_server: Server, fuzz_client: httpx.Client
) -> None:
    body, signed = _signed(case, fuzz_server.settings)
    replaced = {k.lower() for k in signed} | {"content-length", "host"}
    headers = {
        str(k): str(v).strip()  # h11 refuses surrounding whitespace before it leaves the client
        for k, v in (case.headers or {}).items()
        if k.lower() not in replaced
    }
    headers.update(signed)
    response = fuzz_client.request(
        case.method,
        fuzz_server.base_url + case.formatted_path,
        params=case.query,
        content=body,
        headers=headers,
        timeout=30,
    )
    assert response.status_code < 500 or (
        response.status_code == 503 and "retry-after" in response.headers
    ), (case.method, case.path, body, response.status_code, response.text, fuzz_server.log())
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )
