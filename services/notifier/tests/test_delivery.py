"""Delivery reliability: retries, Retry-After, fallback, dead letters, exactly-once sends."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from pymongo.errors import AutoReconnect

from hotline.clock import ManualClock
from hotline.contracts.events import DeadLetter, DeliveryStatus
from hotline.contracts.topics import TopicNames
from hotline.ids import stable_id
from hotline.privacy import mask_address
from hotline.runner import Transient
from hotline.testing.kafka import read_topic
from hotline_notifier.settings import RateLimit, default_rate_limits
from hotline_sandbox.server import SandboxHandle

from .conftest import NotifierFactory, decision, outcomes

pytestmark = pytest.mark.integration

QUIET = {"informed": [], "citizen_reply": "none"}


async def test_provider_500s_are_retried_with_backoff(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier()
    sandbox.sandbox.inject("zalo", "error_500", count=2)
    got = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    [alert] = got
    assert (alert.status, alert.channel, alert.attempts) == (DeliveryStatus.SENT, "zalo", 3)
    assert [a.outcome for a in sandbox.sandbox.store.attempts("zalo")] == [
        "fault",
        "fault",
        "accepted",
    ]


async def test_429_waits_for_retry_after(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier(backoff_initial_s=0.0, backoff_max_s=0.0)
    sandbox.sandbox.inject("zalo", "rate_limit", count=1, retry_after=1)
    started = time.monotonic()
    [alert] = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    assert alert.status == DeliveryStatus.SENT and alert.attempts == 2
    assert time.monotonic() - started >= 1.0  # the provider's Retry-After was honoured


async def test_a_retry_after_beyond_the_limit_falls_back_at_once(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier(max_retry_after_s=5)
    sandbox.sandbox.inject("zalo", "rate_limit", count=1, retry_after=120)
    started = time.monotonic()
    got = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    assert time.monotonic() - started < 3
    assert [(o.channel, o.status.value) for o in got] == [("zalo", "failed"), ("sms", "sent")]


async def test_timeouts_and_garbage_are_retried_then_the_next_channel_is_used(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier(send_attempts=3)
    sandbox.sandbox.inject("zalo", "timeout", count=1, hang_s=2)
    sandbox.sandbox.inject("zalo", "non_json", count=1)
    sandbox.sandbox.inject("zalo", "close", count=1)
    got = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    assert [(o.channel, o.status.value, o.attempts) for o in got] == [
        ("zalo", "failed", 3),
        ("sms", "sent", 1),
    ]
    assert got[0].error is not None and got[0].error.startswith("transient")
    [sms] = sandbox.sandbox.store.messages(provider="twilio")
    assert sms.to == "+84905111222" and "HUE-20240124-0042" in sms.text


async def test_a_4xx_fails_the_channel_at_once(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier()
    # Zalo refuses the consultation message (-213) and the ZNS template to the officer's phone.
    sandbox.sandbox.inject("zalo", "bad_request", count=5)
    sandbox.sandbox.inject("zns", "bad_request", count=5)
    got = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    assert [(o.channel, o.status.value, o.attempts) for o in got] == [
        ("zalo", "failed", 1),
        ("sms", "sent", 1),
    ]
    assert len(sandbox.sandbox.store.attempts("zalo")) == 1
    assert len(sandbox.sandbox.store.attempts("zns")) == 1
    error = got[0].error or ""
    assert "zalo: error -213" in error and "; then zns: error" in error
    assert got[0].address_masked == mask_address("7700112233445566")  # the contact it tried


async def test_a_zalo_user_outside_the_window_gets_the_zns_template_on_their_phone(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    """-213 (the officer has not written to the OA lately): the kind's ZNS template goes to the
    phone number their SMS contact gives, on Zalo still, instead of falling back to SMS."""
    n = await make_notifier()
    sandbox.sandbox.inject("zalo", "bad_request", count=1)
    got = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    assert [(o.channel, o.status.value, o.attempts) for o in got] == [("zalo", "sent", 1)]
    [zns] = sandbox.sandbox.store.messages()
    assert zns.provider == "zns" and zns.to == "84905111222"
    assert zns.body["template_id"] and zns.body["template_data"]
    assert got[0].provider_message_id == zns.provider_message_id
    assert got[0].address_masked == mask_address("+84905111222")  # where it went


async def test_the_zns_fallback_takes_the_zns_rate_limit_not_zalo_s(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    """ZNS has its own quota: once the `zns` bucket is empty, a second -213 does not squeeze a
    template through on the `zalo` bucket; the officer is reached on the next contact."""
    limits = default_rate_limits() | {"zns": RateLimit(rate=0.01, burst=1)}
    n = await make_notifier(rate_limits=limits, max_rate_wait_s=0.5)
    sandbox.sandbox.inject("zalo", "bad_request", count=2)
    first = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    second = outcomes(
        await n.handlers.handle_decision(
            decision(case_id="HUE-20240124-0043", decision_id="dec-43", **QUIET)
        )
    )
    assert [(o.channel, o.status.value) for o in first] == [("zalo", "sent")]
    assert [(o.channel, o.status.value) for o in second] == [("zalo", "failed"), ("sms", "sent")]
    assert "rate limit zns" in (second[0].error or "")
    assert [m.provider for m in sandbox.sandbox.store.messages()] == ["zns", "twilio"]


async def test_sms_falls_back_from_twilio_to_esms(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier(send_attempts=1)
    sandbox.sandbox.inject("zalo", "error_500", count=1)
    sandbox.sandbox.inject("twilio", "error_500", count=1)
    got = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    assert [(o.channel, o.status.value) for o in got] == [
        ("zalo", "failed"),
        ("sms", "failed"),
        ("sms", "sent"),
    ]
    [esms] = sandbox.sandbox.store.messages(provider="esms")
    assert esms.to == "0905111222"


async def test_every_channel_failing_dead_letters_and_escalates_at_once(
    make_notifier: NotifierFactory,
    sandbox: SandboxHandle,
    clock: ManualClock,
    topics: TopicNames,
    kafka_bootstrap: str,
) -> None:
    n = await make_notifier(send_attempts=1, sms_providers=["twilio"])
    sandbox.sandbox.inject("zalo", "error_500", count=1)
    sandbox.sandbox.inject("twilio", "error_500", count=1)
    outs = await n.handlers.handle_decision(decision(**QUIET))
    got = outcomes(outs)
    assert [o.status.value for o in got] == ["failed", "failed", "dead"]
    await n.publisher.publish_many(outs)
    letters = await read_topic(kafka_bootstrap, topics.deadletter, expect=1)
    [letter] = [DeadLetter.model_validate_json(r.value or b"") for r in letters]
    assert letter.reason.value == "undeliverable" and letter.service == "notifier"
    assert "hue-city-o1" in letter.detail
    assert "+84905111222" not in letter.value  # addresses are masked in the letter
    # No waiting for the level's timeout: the next tick (same instant) escalates.
    report = await n.engine.tick()
    assert report.escalated == 1
    assert [m.to for m in sandbox.sandbox.store.messages()] == ["+84905111000"]


async def test_a_redelivered_decision_sends_nothing_twice(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    first = await make_notifier()
    outs1 = await first.handlers.handle_decision(decision())
    # "Restart": a new notifier instance on the same database gets the same decision again.
    second = await make_notifier()
    outs2 = await second.handlers.handle_decision(decision())
    assert len(sandbox.sandbox.store.messages()) == 3
    # The stored outcomes are republished, identical, so the case timeline is complete.
    assert sorted(o.delivery_id for o in outcomes(outs1)) == sorted(
        o.delivery_id for o in outcomes(outs2)
    )
    assert {o.status for o in outcomes(outs2)} == {DeliveryStatus.SENT}


async def test_a_redelivery_after_a_fallback_does_not_retry_the_failed_channel(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier(send_attempts=1)
    sandbox.sandbox.inject("zalo", "error_500", count=1)
    await n.handlers.handle_decision(decision(**QUIET))
    again = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    assert [(o.channel, o.status.value) for o in again] == [("zalo", "failed"), ("sms", "sent")]
    assert len(sandbox.sandbox.store.messages()) == 1


async def test_a_delivery_in_flight_elsewhere_is_not_sent_again(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier(step_lease_s=60)
    d = decision(**QUIET)
    # Another replica claimed the officer's Zalo delivery a moment ago and is still sending.
    delivery_id = stable_id(d.decision_id, "L0", "hue-city-o1", "zalo")
    assert await n.repo.claim(f"dlv:{delivery_id}", clock.now(), status="sending")
    with pytest.raises(Transient):  # the runner retries the decision later
        await n.handlers.handle_decision(d)
    assert sandbox.sandbox.store.messages() == []  # and no fallback to SMS meanwhile
    # The owner died: after the lease the delivery is taken over and sent once.
    clock.advance(61)
    [alert] = outcomes(await n.handlers.handle_decision(d))
    assert alert.status == DeliveryStatus.SENT and alert.delivery_id == delivery_id
    assert len(sandbox.sandbox.store.messages()) == 1


async def test_a_refreshed_zalo_token_is_stored_for_the_next_process(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    n = await make_notifier()
    sandbox.sandbox.inject("zalo", "token_expired")
    [alert] = outcomes(await n.handlers.handle_decision(decision(**QUIET)))
    assert alert.status == DeliveryStatus.SENT and alert.channel == "zalo"
    stored = await n.repo.load_tokens("zalo")
    assert stored is not None and stored["access_token"].startswith("dev-zalo-at-")
    # Zalo refresh tokens are single-use: a restarted notifier must use the stored one.
    sandbox.sandbox.zalo_tokens.discard("dev-zalo-access-token")
    restarted = await make_notifier()
    sandbox.sandbox.inject("zalo", "token_expired")
    d = decision(case_id="HUE-20240124-0043", decision_id="dec-43", **QUIET)
    [again] = outcomes(await restarted.handlers.handle_decision(d))
    assert again.status == DeliveryStatus.SENT and again.channel == "zalo"
    refreshes = [a for a in sandbox.sandbox.store.attempts("zalo_oauth")]
    assert [a.outcome for a in refreshes] == ["refreshed", "refreshed"]


async def test_old_records_are_expired_by_the_scheduler(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    n = await make_notifier(retention_days=7)
    await n.handlers.handle_decision(decision(**QUIET))
    await n.engine.resolve("HUE-20240124-0042")
    assert await n.repo.claims.count_documents({"service": "notifier"}) > 0
    clock.advance(timedelta(days=8))
    await n.engine.tick()
    assert await n.repo.claims.count_documents({"service": "notifier"}) == 0
    assert await n.repo.get_alert("HUE-20240124-0042") is None


async def test_a_database_blip_after_sending_does_not_send_again(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = await make_notifier()
    real_claim = n.repo.claim_batched
    failures = {"res": 1, "dlv": 1}

    async def flaky_claim(key: str, now: object, **fields: object) -> bool:
        kind = key.split(":")[0]
        if failures.get(kind, 0) > 0:
            failures[kind] -= 1
            if kind == "dlv":  # the insert lands, but the answer is lost
                await real_claim(key, now, **fields)  # type: ignore[arg-type]
            raise AutoReconnect("connection closed")
        return await real_claim(key, now, **fields)  # type: ignore[arg-type]

    monkeypatch.setattr(n.repo, "claim_batched", flaky_claim)
    d = decision(**QUIET)
    with pytest.raises(AutoReconnect):  # the claim's answer was lost: the runner retries
        await n.handlers.handle_decision(d)
    assert sandbox.sandbox.store.messages() == []
    with pytest.raises(AutoReconnect):  # sent, but the result could not be recorded
        await n.handlers.handle_decision(d)
    assert len(sandbox.sandbox.store.messages()) == 1
    [alert] = outcomes(await n.handlers.handle_decision(d))  # the database is back
    assert alert.status == DeliveryStatus.SENT
    assert len(sandbox.sandbox.store.messages()) == 1  # not sent twice, no lease wait
    assert await n.repo.get_claim(f"res:{alert.delivery_id}") is not None


async def test_the_citizens_receipt_does_not_wait_for_the_officers_provider(
    make_notifier: NotifierFactory, sandbox: SandboxHandle
) -> None:
    """The alert and the citizen's reply of one decision go out together: a provider that
    makes the officer's alert wait (Zalo's Retry-After) does not hold the citizen's receipt."""
    n = await make_notifier(backoff_initial_s=0.0, backoff_max_s=0.0)
    sandbox.sandbox.inject("zalo", "rate_limit", count=1, retry_after=1)
    citizen = {"channel": "viber", "address": "aB3dE5fG7hI9jK1l=="}
    outs = await n.handlers.handle_decision(decision(reporter=citizen))
    providers = [m.provider for m in sandbox.sandbox.store.messages()]
    assert sorted(providers) == ["twilio", "viber", "zalo"]
    assert providers.index("viber") < providers.index("zalo"), providers
    # The outputs keep the decision's order whatever finished first.
    assert [(o.purpose.value, o.status.value) for o in outcomes(outs)] == [
        ("alert", "sent"),
        ("inform", "sent"),
        ("citizen_receipt", "sent"),
    ]
