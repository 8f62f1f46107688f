"""`hotline replay-deadletters`: put dead-lettered messages back on their source topic.

Replay after fixing what made them fail (a bug, a missing configuration). Each dead letter is
replayed at most once (a claim per dlq_id in MongoDB), so running the command twice is safe.

Not replayable, listed with the reason and counted, never published:

* undecodable values (not UTF-8 / not JSON);
* the notifier's undeliverable alerts (`reason=undeliverable`). Their `source_topic` is the
  deliveries topic, but what they hold is a summary of the notification that no channel could
  deliver (case, step, recipient id, the failed outcomes), not a message of that topic:
  publishing it there would only make the topic's consumers dead-letter it again, and nothing
  would be sent. There is no resend path for them; the operator fixes the recipient's contacts
  and alerts the person another way (the case's escalation has moved on meanwhile).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from hotline.contracts import DeadLetter, decode
from hotline.contracts.events import DeadLetterReason
from hotline.kafka import Outgoing, Publisher, make_producer, read_to_end
from hotline.mongo import claim, make_client
from hotline_cli.settings import CliSettings


@dataclass
class ReplayReport:
    seen: int = 0
    replayed: int = 0
    already: int = 0
    undecodable: int = 0
    undeliverable: int = 0

    @property
    def skipped(self) -> int:
        """Letters that are never replayed (listed with why)."""
        return self.undecodable + self.undeliverable

    def summary(self) -> str:
        return (
            f"dead letters: {self.seen} seen, {self.replayed} replayed, "
            f"{self.already} replayed before, {self.skipped} not replayable "
            f"({self.undecodable} undecodable, {self.undeliverable} undeliverable alerts)"
        )


def undeliverable_alert(letter: DeadLetter, deliveries_topic: str) -> bool:
    """The notifier's record of a notification no channel delivered (not a topic message)."""
    return letter.reason == DeadLetterReason.UNDELIVERABLE or (
        letter.service == "notifier" and letter.source_topic == deliveries_topic
    )


def describe_undeliverable(letter: DeadLetter) -> str:
    """One line: which notification of which case could not be delivered to whom (by id)."""
    try:
        summary = json.loads(letter.value)
    except ValueError:
        summary = {}
    if not isinstance(summary, dict):
        summary = {}
    parts = [
        f"{name}={summary[name]}"
        for name in ("case_id", "purpose", "step", "recipient_id")
        if summary.get(name)
    ]
    return (
        f"not replayable {letter.dlq_id} ({letter.reason.value}): "
        f"{' '.join(parts) or letter.detail[:80]}: a notification summary, not a "
        f"{letter.source_topic} message; nothing can resend it: fix the recipient's contacts "
        "and reach them another way"
    )


async def read_dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Every dead letter on the topic, from the beginning to the end offsets as they are now."""
    return [decode(DeadLetter, r.value or b"{}") for r in await read_to_end(bootstrap, topic)]


async def replay(
    settings: CliSettings, *, reason: str | None = None, dry_run: bool = False
) -> ReplayReport:
    report = ReplayReport()
    letters = await read_dead_letters(settings.kafka_bootstrap_servers, settings.topics.deadletter)
    mongo = make_client(settings.mongodb_uri.get_secret_value(), "hotline-cli")
    db = mongo[settings.mongodb_database]
    producer = make_producer(settings.kafka_bootstrap_servers, client_id="hotline-cli")
    await producer.start()
    publisher = Publisher(producer, "cli")
    try:
        for letter in letters:
            report.seen += 1
            if reason and letter.reason.value != reason:
                continue
            if letter.value_encoding == "base64" or letter.reason.value == "undecodable":
                report.undecodable += 1
                print(f"not replayable {letter.dlq_id} (undecodable): {letter.detail[:80]}")
                continue
            if undeliverable_alert(letter, settings.topics.deliveries):
                report.undeliverable += 1
                print(describe_undeliverable(letter))
                continue
            if dry_run:
                print(f"would replay {letter.dlq_id} → {letter.source_topic}: {letter.detail[:80]}")
                continue
            if not await claim(db, f"dlq-replay:{letter.dlq_id}", topic=letter.source_topic):
                report.already += 1
                continue
            await publisher.publish(
                Outgoing(letter.source_topic, letter.value.encode(), key=letter.key)
            )
            report.replayed += 1
    finally:
        await producer.stop()
        mongo.close()
    return report


def run(settings: CliSettings, reason: str | None, dry_run: bool) -> int:
    report = asyncio.run(replay(settings, reason=reason, dry_run=dry_run))
    print(report.summary())
    return 0
