"""Bad input, floods, an unavailable database or broker, and dedup across replicas and time,
against the real broker and database."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from hotline import signatures
from hotline.clock import ManualClock
from hotline.contracts.events import TEXT_LIMIT
from hotline.mongo import MotorDatabase, make_client
from hotline_ingest.dedup import (
    CLAIMS,
    ClaimBatcher,
    Decision,
    DedupLedger,
    DedupUnavailable,
    MarkBatcher,
    published_mark_id,
)

from .conftest import Ingest, IngestFactory, metric

pytestmark = pytest.mark.integration


# --------------------------------------------------------------------------- size limit


async def test_declared_oversize_body_is_refused_before_reading(
    ingest_factory: IngestFactory,
) -> None:
    async with ingest_factory(body_limit_bytes=4096) as ingest:
        delivery = ingest.samples.viber(text="x" * 5000)
        before = metric("hotline_ingest_rejected_total", channel="viber", reason="too_large")
        response = await ingest.send(delivery)
        assert response.status_code == 413
        assert "4096" in response.json()["detail"]
        # No signature at all: the size is checked first, the body is never read or parsed.
        unsigned = await ingest.client.post(
            "/webhooks/zalo", content=b"{" * 5000, headers={"Content-Type": "application/json"}
        )
        assert unsigned.status_code == 413
        assert metric("hotline_ingest_rejected_total", channel="viber", reason="too_large") == (
            before + 1
        )
        assert await ingest.published_count() == 0


async def test_streamed_body_is_counted_without_content_length(
    ingest_factory: IngestFactory,
) -> None:
    async with ingest_factory(body_limit_bytes=4096) as ingest:

        def chunked(body: bytes) -> object:
            async def gen() -> AsyncIterator[bytes]:
                for i in range(0, len(body), 1000):
                    yield body[i : i + 1000]

            return gen()

        big = ingest.samples.viber(text="x" * 5000)
        response = await ingest.client.post(
            big.path,
            content=chunked(big.body),
            headers=big.headers,  # type: ignore[arg-type]
        )
        assert "content-length" not in {k.lower() for k in big.headers}
        assert response.status_code == 413
        small = ingest.samples.viber(text="vừa đủ")
        ok = await ingest.client.post(
            small.path,
            content=chunked(small.body),
            headers=small.headers,  # type: ignore[arg-type]
        )
        assert ok.status_code == 200, ok.text
        assert await ingest.published_count() == 1


# --------------------------------------------------------------------------- malformed input


async def test_signed_garbage_is_400_and_a_missing_field_is_422_naming_it(ingest: Ingest) -> None:
    samples = ingest.samples
    before = metric("hotline_ingest_rejected_total", channel="viber", reason="malformed")
    for garbage in (
        b"{not json",
        b"\xff\xfe\x00",
        b"",
        b"[1,2",
        "\ud800".encode("utf-8", "surrogatepass"),
    ):
        response = await ingest.send(samples.viber_raw(garbage))
        assert response.status_code == 400, (garbage, response.text)
        assert response.json()["error"] == "bad_request"
    no_token = json.dumps(
        {"event": "message", "timestamp": 1, "sender": {"id": "u"}, "message": {"type": "text"}}
    ).encode()
    missing = await ingest.send(samples.viber_raw(no_token))
    assert missing.status_code == 422
    assert "message_token" in missing.json()["detail"]
    wrong_type = await ingest.send(samples.viber_raw(b'{"event": 5}'))
    assert wrong_type.status_code == 422 and "event" in wrong_type.json()["detail"]
    not_object = await ingest.send(samples.viber_raw(b"[]"))
    assert not_object.status_code == 422
    assert metric("hotline_ingest_rejected_total", channel="viber", reason="malformed") == (
        before + 8
    )

    wa = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "1",
                    "changes": [{"field": "messages", "value": {"messages": [{"id": "w"}]}}],
                }
            ],
        }
    ).encode()
    response = await ingest.send(samples.whatsapp_raw(wa))
    assert response.status_code == 422
    assert "entry.0.changes.0.value.messages.0.from" in response.json()["detail"]

    zalo_bad = await ingest.client.post(
        "/webhooks/zalo", content=b"not json", headers={signatures.ZALO_HEADER: "mac=00"}
    )
    assert zalo_bad.status_code == 400
    web_missing = await ingest.send(samples.web(text="   \u0000\u0007  "))
    assert web_missing.status_code == 422 and "text" in web_missing.json()["detail"]
    bad_phone = await ingest.send(samples.web(phone="call me maybe"))
    assert bad_phone.status_code == 422 and "phone" in bad_phone.json()["detail"]
    form = await ingest.send(
        samples.twilio_form("/webhooks/twilio/sms", {"From": "+84912345678", "Body": "x"})
    )
    assert form.status_code == 422 and "MessageSid" in form.json()["detail"]
    assert await ingest.published_count() == 0


async def test_awkward_text_is_normalised_never_a_500(ingest: Ingest) -> None:
    samples = ingest.samples
    cases = {
        "empty": "",
        "emoji": "🚨🔥🆘👮‍♂️",
        "controls": "Cứu\u0000 tôi\u0007\r\nngay\u001b[31m",
        "decomposed": "Cu\u031bu to\u0302i",  # NFD: combining horn and circumflex
        "huge": "á" * 100_000,
    }
    for name, text in cases.items():
        response = await ingest.send(samples.telegram(text=text))
        assert response.status_code == 200, (name, response.text)
    events = await ingest.events(len(cases))
    by_text = [e.text for e in events]
    assert by_text[0] == ""
    assert by_text[1] == "🚨🔥🆘👮‍♂️"
    assert by_text[2] == "Cứu tôi\nngay[31m"
    assert by_text[3] == "Cưu tôi"
    huge = events[4]
    assert huge.text_truncated and len(huge.text) == TEXT_LIMIT
    assert huge.raw_truncated and len(huge.raw.encode()) <= 16 * 1024


# --------------------------------------------------------------------------- floods


async def test_a_flooding_provider_sender_is_published_flagged_never_dropped(
    ingest_factory: IngestFactory,
) -> None:
    async with ingest_factory(sender_burst=3, sender_per_minute=1) as ingest:
        rejected = metric("hotline_ingest_rejected_total", channel="viber", reason="rate_limited")
        flooded = metric("hotline_ingest_flood_limited_total", channel="viber")
        accepted = metric("hotline_ingest_accepted_total", channel="viber", kind="message")
        spam = [ingest.samples.viber(sender_id="spammer==", text=f"spam {i}") for i in range(6)]
        answers = [await ingest.send(d) for d in spam]
        # A 2xx means on the topic: every item is published, those over the sender's rate
        # flagged so that downstream can collapse them (a 429 would lose Twilio's and Zalo's).
        assert [a.status_code for a in answers] == [200] * 6
        assert [a.json()["accepted"] for a in answers] == [1] * 6
        assert [a.json().get("flood_limited", 0) for a in answers] == [0, 0, 0, 1, 1, 1]
        citizen = await ingest.send(ingest.samples.viber(sender_id="citizen==", text="cứu"))
        assert citizen.json() == {"status": "ok", "accepted": 1, "duplicates": 0, "ignored": 0}
        records = await ingest.records(7)
        flags = [json.loads(r.value or b"{}").get("flood_limited", False) for r in records]
        assert flags == [False, False, False, True, True, True, False]
        events = await ingest.events(7)
        assert [e.text for e in events[:6]] == [f"spam {i}" for i in range(6)]
        # Counted once each: accepted (all), flood-limited (the flagged), never rejected.
        assert metric("hotline_ingest_accepted_total", channel="viber", kind="message") == (
            accepted + 7
        )
        assert metric("hotline_ingest_flood_limited_total", channel="viber") == flooded + 3
        assert metric("hotline_ingest_rejected_total", channel="viber", reason="rate_limited") == (
            rejected
        )
        # A provider's retry of a flagged item is a duplicate like any other.
        again = await ingest.send(spam[5])
        assert again.json()["duplicates"] == 1 and "flood_limited" not in again.json()
        assert await ingest.published_count() == 7


async def test_web_form_is_limited_per_client_address(ingest_factory: IngestFactory) -> None:
    async with (
        ingest_factory(web_burst=2, web_per_minute=1, client_ip="203.0.113.7") as first,
    ):
        before = metric("hotline_ingest_rejected_total", channel="web", reason="rate_limited")
        answers = [await first.send(first.samples.web()) for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert int(answers[2].headers["retry-after"]) >= 1
        assert answers[2].json()["error"] == "too_many_requests"
        assert await first.published_count() == 2
        # Refused, so counted as rejected (once), and a person can resend.
        assert metric("hotline_ingest_rejected_total", channel="web", reason="rate_limited") == (
            before + 1
        )


async def test_desk_is_limited_per_call_taker(ingest_factory: IngestFactory) -> None:
    async with ingest_factory(desk_burst=1, desk_per_minute=1) as ingest:
        assert (await ingest.send(ingest.samples.desk())).status_code == 202
        limited = await ingest.send(ingest.samples.desk())
        assert limited.status_code == 429 and "retry-after" in limited.headers


# --------------------------------------------------------------------------- dependencies down


async def test_database_down_fails_closed_with_503(ingest_factory: IngestFactory) -> None:
    async with ingest_factory(mongodb_uri="mongodb://127.0.0.1:1/", dedup_timeout_s=0.5) as ingest:
        before = metric("hotline_ingest_unavailable_total", channel="zalo")
        response = await ingest.send(ingest.samples.zalo())
        assert response.status_code == 503
        assert response.headers["retry-after"] == "3"
        assert "mongodb" in response.json()["detail"]
        assert metric("hotline_ingest_unavailable_total", channel="zalo") == before + 1
        # The next retries are answered at once rather than after another deadline each.
        started = time.perf_counter()
        again = await ingest.send(ingest.samples.zalo())
        assert again.status_code == 503 and "mongodb" in again.json()["detail"]
        assert time.perf_counter() - started < 0.3
        ready = await ingest.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["kafka"] == "ok"
        assert await ingest.published_count() == 0


async def test_a_failed_publish_is_retried_under_the_same_event_id(
    ingest_factory: IngestFactory,
) -> None:
    delivery = None
    # A broker slower than the deadline (here: an impossible deadline) → 503, claim kept.
    async with ingest_factory(publish_timeout_s=1e-6) as slow:
        delivery = slow.samples.web(submission_id="slow-broker-0001")
        failed = await slow.send(delivery)
        assert failed.status_code == 503 and "kafka" in failed.json()["detail"]
        # The record may still land (see below): the answer must not say nothing was published.
        assert "not confirmed" in failed.json()["detail"]
        assert "nothing" not in failed.json()["detail"]
        claim = await slow.db[CLAIMS].find_one({"_id": "ingest:web:slow-broker-0001"})
        assert claim is not None and claim["state"] == "failed"
    # The provider's retry reaches a healthy replica: accepted under the claimed event id.
    async with ingest_factory() as healthy:
        retried = await healthy.send(delivery)
        assert retried.status_code == 202
        assert retried.json()["event_id"] == claim["event_id"]
        again = await healthy.send(delivery)
        assert again.json() == {"status": "duplicate", "event_id": claim["event_id"]}
        # The first attempt may still have reached the broker: same event id, so one event.
        records = await healthy.events(1)
        assert {e.event_id for e in records} == {claim["event_id"]}
        await healthy.app.state.ledger.flush()
        mark = await healthy.db[CLAIMS].find_one(
            {"_id": published_mark_id("ingest:web:slow-broker-0001")}
        )
        assert mark is not None and mark["event_id"] == claim["event_id"]


# --------------------------------------------------------------------------- dedup across time


async def test_concurrent_retries_on_one_replica_publish_once(ingest: Ingest) -> None:
    delivery = ingest.samples.viber(text="gửi nhiều lần")
    answers = await asyncio.gather(*(ingest.send(delivery) for _ in range(12)))
    assert [a.status_code for a in answers] == [200] * 12
    assert sum(a.json()["accepted"] for a in answers) == 1
    assert sum(a.json()["duplicates"] for a in answers) == 11
    assert await ingest.published_count() == 1


async def test_a_retry_on_another_replica_or_after_a_restart_is_a_duplicate_at_any_age(
    ingest_factory: IngestFactory,
) -> None:
    clock = ManualClock(datetime.now(UTC))
    delivery = None
    async with ingest_factory(clock=clock) as a, ingest_factory(clock=clock) as b:
        delivery = a.samples.telegram(text="hai máy chủ")
        assert (await a.send(delivery)).json()["accepted"] == 1
        (first,) = await a.events(1)
        await a.app.state.ledger.flush()  # the published mark is written in the background
        key = f"ingest:telegram:{first.provider_message_id}"
        mark = await a.db[CLAIMS].find_one({"_id": published_mark_id(key)})
        assert mark is not None and mark["event_id"] == first.event_id
        # Replica b meets a claim marked published: a duplicate, at once and at any age.
        for advance in (0.0, b.settings.inflight_window_s + 1, 3 * 24 * 3600.0):
            clock.advance(advance)
            again = await b.send(delivery)
            assert again.status_code == 200, again.text
            assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 1
    # Both replicas restarted (their memory of what they published is gone): still answered.
    async with ingest_factory(clock=clock) as c:
        clock.advance(24 * 3600)
        later = await c.send(delivery)
        assert later.status_code == 200 and later.json()["duplicates"] == 1
        assert await c.published_count() == 1


async def test_shutdown_writes_the_published_marks_still_queued(
    ingest_factory: IngestFactory,
) -> None:
    clock = ManualClock(datetime.now(UTC))
    async with ingest_factory(clock=clock) as a:
        deliveries = [a.samples.zalo(msg_id=f"stopping-{i}") for i in range(5)]
        for delivery in deliveries:
            assert (await a.send(delivery)).json()["accepted"] == 1
        # SIGTERM right after the answers: the app's shutdown flushes the marks.
    ids = {d["_id"] async for d in a.db[CLAIMS].find({})}
    claims = {f"ingest:zalo:stopping-{i}" for i in range(5)}
    assert ids == claims | {published_mark_id(k) for k in claims}
    async with ingest_factory(clock=clock) as b:
        clock.advance(b.settings.inflight_window_s + 1)
        answers = [await b.send(d) for d in deliveries]
        assert [x.json()["duplicates"] for x in answers] == [1] * 5
        assert await b.published_count() == 5


async def test_a_crash_between_the_ack_and_the_mark_republishes_the_same_event(
    ingest_factory: IngestFactory,
) -> None:
    """The published mark is written after the broker's ack: a process killed in between leaves
    a pending claim of a delivery already on the topic. Past the in-flight window it is
    published again under the same event id, which consumers deduplicate."""
    clock = ManualClock(datetime.now(UTC))
    async with ingest_factory(clock=clock) as a, ingest_factory(clock=clock) as b:
        delivery = a.samples.telegram(update_id=515151, text="tắt ngay sau khi gửi")
        assert (await a.send(delivery)).json()["accepted"] == 1
        await a.app.state.ledger.flush()
        # As if a had died before its mark: the claim is left pending, unmarked.
        await a.db[CLAIMS].delete_one({"_id": published_mark_id("ingest:telegram:515151")})
        busy = await b.send(delivery)  # young: b cannot tell "publishing" from a crash
        assert busy.status_code == 503 and busy.headers["retry-after"] == "3"
        clock.advance(b.settings.inflight_window_s + 1)
        retried = await b.send(delivery)
        assert retried.status_code == 200 and retried.json()["accepted"] == 1
        events = await b.events(2)
        assert len(events) == 2 and len({e.event_id for e in events}) == 1
        await b.app.state.ledger.flush()
        assert (await b.send(delivery)).json()["duplicates"] == 1


async def test_a_published_mark_that_cannot_be_written_is_counted() -> None:
    client = make_client("mongodb://127.0.0.1:1/", "hotline-ingest", serverSelectionTimeoutMS=100)
    try:
        marks = MarkBatcher(
            client["unreachable"], ManualClock(datetime.now(UTC)), batch_size=8, timeout_s=0.3
        )
        marks.backoff_s = 0.01
        before = metric("hotline_ingest_unmarked_claims_total")
        marks.mark(["ingest:sms:a", "ingest:sms:b"])
        await marks.flush()
        assert metric("hotline_ingest_unmarked_claims_total") == before + 2
        assert len(marks) == 0
    finally:
        client.close()


async def test_a_delivery_whose_publisher_was_killed_is_published_on_retry(
    ingest_factory: IngestFactory,
) -> None:
    """kill -9 between the claim and the broker's ack leaves a pending claim and no record."""
    clock = ManualClock(datetime.now(UTC))
    async with ingest_factory(clock=clock) as ingest:
        delivery = ingest.samples.telegram(update_id=424242, text="máy chủ bị tắt ngang")
        received = clock.now() - timedelta(seconds=1)
        await ingest.db[CLAIMS].insert_one(
            {
                "_id": "ingest:telegram:424242",
                "owner": "ingest",
                "state": "pending",
                "event_id": "01900000-0000-7000-8000-000000000042",
                "received_at": received,
                "claimed_at": received,
            }
        )
        assert (await ingest.send(delivery)).status_code == 503  # may still be publishing
        clock.advance(ingest.settings.inflight_window_s + 1)
        retried = await ingest.send(delivery)
        assert retried.status_code == 200 and retried.json()["accepted"] == 1
        (event,) = await ingest.events(1)
        assert event.event_id == "01900000-0000-7000-8000-000000000042"


async def test_claims_expire_after_the_retention_and_only_ingest_claims(
    ingest_factory: IngestFactory,
) -> None:
    clock = ManualClock(datetime.now(UTC) - timedelta(days=8))
    async with ingest_factory(clock=clock) as ingest:
        old = ingest.samples.zalo(msg_id="old-message")
        assert (await ingest.send(old)).json()["accepted"] == 1
        ledger: DedupLedger = ingest.app.state.ledger
        await ledger.flush()  # its published mark, written eight days ago too
        await ingest.db[CLAIMS].insert_one(
            {"_id": "esc:case-1:0:1", "claimed_at": clock.now()}  # another service's claim
        )
        clock.set(datetime.now(UTC))
        recent = ingest.samples.zalo(msg_id="recent-message")
        assert (await ingest.send(recent)).json()["accepted"] == 1
        await ledger.flush()
        assert await ledger.expire(timedelta(days=7)) == 2  # the old claim and its mark
        remaining = sorted([d["_id"] async for d in ingest.db[CLAIMS].find({})])
        recent_key = "ingest:zalo:recent-message"
        assert remaining == ["esc:case-1:0:1", recent_key, published_mark_id(recent_key)]


async def test_readiness_and_openapi(ingest: Ingest) -> None:
    ready = await ingest.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"kafka": "ok", "mongodb": "ok"}
    schema = (await ingest.client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/webhooks/zalo",
        "/webhooks/viber",
        "/webhooks/whatsapp",
        "/webhooks/telegram",
        "/webhooks/twilio/sms",
        "/webhooks/twilio/voice",
        "/webhooks/pbx",
        "/webhooks/web",
        "/desk/call-summaries",
    ):
        post = paths[path]["post"]
        ref = next(iter(post["requestBody"]["content"].values()))["schema"]["$ref"]
        assert ref.split("/")[-1] in schema["components"]["schemas"], path
        assert "503" in post["responses"] or path == "/webhooks/whatsapp"
    assert "get" in paths["/webhooks/whatsapp"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    metrics = (await ingest.client.get("/metrics")).text
    assert "hotline_ingest_accepted_total" in metrics


async def test_a_claim_won_after_the_request_gave_up_is_given_back(mongo_db: MotorDatabase) -> None:
    # The database answers, but later than the request was willing to wait: the request is
    # answered 503 and its claim, won meanwhile, must not block the provider's retry.
    ledger = DedupLedger(
        mongo_db, ManualClock(datetime.now(UTC)), inflight_window_s=10, timeout_s=1e-6
    )
    with pytest.raises(DedupUnavailable):
        await ledger.reserve("ingest:zalo:slow-db", "event-1", datetime.now(UTC))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if not ledger.batcher._tasks:
            break
    assert await mongo_db[CLAIMS].find_one({"_id": "ingest:zalo:slow-db"}) is None
    patient = DedupLedger(
        mongo_db, ManualClock(datetime.now(UTC)), inflight_window_s=10, timeout_s=5
    )
    reservation = await patient.reserve("ingest:zalo:slow-db", "event-2", datetime.now(UTC))
    assert reservation.decision is Decision.NEW


async def test_while_the_broker_is_failing_retries_are_answered_without_claiming(
    ingest_factory: IngestFactory,
) -> None:
    async with ingest_factory(publish_timeout_s=1e-6, breaker_open_s=0.3) as ingest:
        first = ingest.samples.viber(text="một")
        assert (await ingest.send(first)).status_code == 503  # claims, publish fails
        second = ingest.samples.viber(text="hai")
        fast = await ingest.send(second)
        assert fast.status_code == 503 and "kafka" in fast.json()["detail"]
        claims = [d["_id"] async for d in ingest.db[CLAIMS].find({})]
        assert len(claims) == 1  # the second delivery never reached the database
        await asyncio.sleep(0.35)
        probe = await ingest.send(second)  # one request probes the broker again
        assert probe.status_code == 503 and "kafka" in probe.json()["detail"]
        assert len([d async for d in ingest.db[CLAIMS].find({})]) == 2


async def test_a_claim_whose_request_already_gave_up_is_not_written(
    mongo_db: MotorDatabase,
) -> None:
    batcher = ClaimBatcher(mongo_db, batch_size=16, concurrency=1)
    gone = batcher.claim({"_id": "ingest:sms:abandoned", "owner": "ingest"})
    gone.cancel()  # answered 503 before the insert ran
    kept = batcher.claim({"_id": "ingest:sms:waiting", "owner": "ingest"})
    assert await kept is True
    await batcher.close()
    assert [d["_id"] async for d in mongo_db[CLAIMS].find({})] == ["ingest:sms:waiting"]
