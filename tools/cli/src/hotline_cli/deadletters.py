"""`hotline replay-deadletters`: put dead-lettered messages back on their source topic.

Replay after fixing what made them fail (a bug, a missing configuration). Each dead letter is
replayed at most once (a claim per dlq_id in MongoDB), so running the command twice is safe.
Undecodable values (not UTF-8 / not JSON) are listed but never replayed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hotline.contracts import DeadLetter, decode
from hotline.kafka import Outgoing, Publisher, make_producer, read_to_end
from hotline.mongo import claim, make_client
from hotline_cli.settings import CliSettings


@dataclass
class ReplayReport:
    seen: int = 0
    replayed: int = 0
    already: int = 0
    skipped: int = 0


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
                report.skipped += 1
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
    print(
        f"dead letters: {report.seen} seen, {report.replayed} replayed, "
        f"{report.already} replayed before, {report.skipped} not replayable (undecodable)"
    )
    return 0
