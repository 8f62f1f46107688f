"""Fault tests: a stream of mixed messages through the whole pipeline while something breaks,
then exact counts of what came out.

(a) kill -9 of each service in turn (ingest, classifier, dispatcher, notifier), each restarted;
(b) the broker stopped and started again; (c) the database stopped for 20 seconds.
2,000 messages in each of the three tests: greetings, reports and missed calls over Zalo, SMS,
Viber, WhatsApp and Twilio Voice, from many citizens (a few write twice). The test plays the
providers: every delivery is retried with the same bytes (so the same provider message id)
until ingest answers 2xx, as a provider does after a 503 or a refused connection. Merges are
not predicted: every decision is read back and accounted for.

What "exactly one" means here, checked for every delivery of the run:

* ingest: every delivery ended with a 2xx that put it in the pipeline (none dropped);
* one event: exactly one event id on `inbound` and the same single event id on `triaged` per
  (channel, provider message id) — the same record may appear twice on a topic after a crash,
  which is allowed because every consumer deduplicates by event id;
* one decision: exactly one stored decision per event (MongoDB, `_id` = event id) and every
  copy on `dispatched` says the same (action, case);
* one case: a report or missed call belongs to exactly one case (opened by it, exactly one case
  document, or joined to an existing one); a greeting has no case and is logged;
* one first alert: every case opened with an alert has exactly one alert message in the
  provider sandbox per level-0 recipient and exactly one `first_alert` delivery outcome; a case
  opened without one has none;
* citizens: exactly one receipt per report decision that asks for one, and at most one
  courtesy reply per citizen;
* nothing stuck: every consumer group's committed offset equals the end of every partition;
* no dead letters (none is injected here).

The one duplicate the design allows is a send the notifier's kill -9 cut off between the
provider's answer and the recording of its outcome: after the delivery's lease the restarted
notifier cannot know the first attempt reached the provider, and sends again (at least once
beats at most once for an emergency alert). Such a duplicate is identified independently: its
first copy is a sandbox message whose provider message id no delivery outcome ever reported.
The counts below include it separately and assert every other duplicate is zero; in the runs
that kill no notifier (broker restart, database stop) it must be zero too.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from hotline.contracts import DeliveryOutcome, DispatchDecision
from hotline.contracts.events import DispatchAction, Recipient
from hotline.contracts.topics import TopicNames
from hotline.mongo import MotorDatabase
from hotline.testing.e2e import (
    Answer,
    ProviderClient,
    SandboxClient,
    wait_for_zero_lag,
)
from hotline.testing.kafka import read_to_end
from hotline_cli.pipeline import Pipeline
from hotline_cli.simulate import FLOOD_PLACES, FLOOD_TEMPLATES
from hotline_ingest.samples import Delivery, Samples

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(REPO / "deploy" / "local" / "stack.py")]
SEED = int(os.environ.get("HOTLINE_FAULT_SEED", "20240124"))

# Acknowledgement timeouts longer than the module: no escalation, so every alert counted is a
# first alert and a case's messages are its opening alert only.
ESCALATION_TIMEOUTS_S = {"P1": 3600, "P2": 3600, "P3": 3600, "P4": 3600}

CASE_ID = re.compile(r"\bHUE-\d{8}-\d{4,}\b")

REPORTS = [
    "Em vừa bị hai thanh niên đi xe Exciter giật túi xách ở {place}, tụi nó chạy về hướng chợ",
    "Có nhóm thanh niên đang đánh nhau bằng gậy gộc trước quán nhậu ở {place}, có người bị thương",
    "Tai nạn giữa xe tải và xe máy ở {place}, người đi xe máy bất tỉnh, mọi người đang gọi cấp cứu",
    "Nhà hàng xóm ở {place} bị trộm cạy cửa lấy mất xe máy tối qua",
    "Ở {place} có một nhóm đang đánh bạc ăn tiền trong nhà kho sau chợ, rất đông người",
    "Khu trọ gần {place} tối nào cũng có mấy thanh niên tụ tập hút chích, vứt kim tiêm ra đường",
    "Quán karaoke ở {place} hát ầm ĩ quá 12 giờ đêm, người già trẻ nhỏ không ngủ được",
    "Mẹ em ở {place} vừa nhận cuộc gọi tự xưng công an yêu cầu chuyển tiền vào tài khoản tạm giữ",
    *(t for t, category in FLOOD_TEMPLATES if category != "greeting"),
]
GREETINGS = [
    "Chào anh Tuấn, chúc anh ngày mới nhiều sức khỏe!",
    "Em chào anh, hôm nay chưa có gì ạ",
    "Chào anh, em lưu số đường dây nóng rồi nhé. Cảm ơn anh",
    "Chúc các anh trực tết an toàn, vui vẻ",
    "Dạ em chào anh, hôm nay chưa có gì ạ. Chúc anh buổi trưa vui vẻ",
    "Cảm ơn anh Giám đốc đã lắng nghe người dân",
    "Hôm nay khu em bình yên anh ạ",
    "Good morning, thanks for the hotline number",
    "Anh ơi hôm nay chưa có gì nha anh",
    "Em gửi lời chào anh, chúc anh ngủ ngon",
    *(t.format(place="{place}") for t, category in FLOOD_TEMPLATES if category == "greeting"),
]
PLACES = [
    *FLOOD_PLACES,
    "đầu cầu Trường Tiền",
    "đường Hùng Vương",
    "chợ Đông Ba",
    "Thuận An",
    "Phong Điền",
    "Lăng Cô",
    "chợ Thủy Dương",
    "Quảng Điền",
]


# --------------------------------------------------------------------------- the stream


@dataclass
class Item:
    """One delivery of the stream and what ingest finally answered it."""

    n: int
    channel: str  # the inbound event's channel
    pmid: str  # provider message id (a call's id without the ":<fact>" ingest appends)
    address: str  # the citizen, as the provider names them
    intent: str  # greeting, report or missed: what we sent; the classifier decides
    delivery: Delivery
    answer: Answer | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.channel, self.pmid


def make_items(samples: Samples, count: int, rng: random.Random, tag: str) -> list[Item]:
    """`count` mixed deliveries: ~55% greetings, ~38% reports, ~7% missed calls; one in
    twenty from a citizen who already wrote (a follow-up, or a second greeting)."""
    items: list[Item] = []
    earlier: list[tuple[str, str]] = []
    for n in range(count):
        roll = rng.random()
        intent = "greeting" if roll < 0.55 else "report" if roll < 0.93 else "missed"
        channel = (
            "voice" if intent == "missed" else rng.choice(["zalo", "sms", "viber", "whatsapp"])
        )
        reuse = [c for c in earlier if c[0] == channel]
        if reuse and rng.random() < 0.05:
            _, address = rng.choice(reuse)
        else:
            address = _address(channel, rng)
            earlier.append((channel, address))
        place = rng.choice(PLACES)
        text = rng.choice(REPORTS if intent == "report" else GREETINGS).format(place=place)
        pmid = f"{tag}{n:05d}{rng.randrange(16**8):08x}"
        if channel == "viber":  # Viber's message tokens are integers
            pmid = str(2**62 + int(f"{n:05d}{rng.randrange(10**8):08d}"))
        items.append(
            Item(
                n, channel, pmid, address, intent, _delivery(samples, channel, pmid, address, text)
            )
        )
    return items


def _address(channel: str, rng: random.Random) -> str:
    digits = f"{rng.randrange(10**8):08d}"
    if channel == "zalo":
        return f"88{rng.randrange(10**14):014d}"
    if channel == "viber":
        return f"vb{rng.randrange(16**16):016x}=="
    return "+849" + digits  # sms, whatsapp, voice: a mobile number


def _delivery(samples: Samples, channel: str, pmid: str, address: str, text: str) -> Delivery:
    if channel == "zalo":
        return samples.zalo(msg_id=pmid, text=text, user_id=address)
    if channel == "viber":
        return samples.viber(message_token=int(pmid), text=text, sender_id=address, name="Citizen")
    if channel == "whatsapp":
        message = samples.whatsapp_message(wamid=pmid, wa_id=address.lstrip("+"), text=text)
        return samples.whatsapp(messages=[message], name="Citizen")
    if channel == "sms":
        return samples.twilio_sms(message_sid=pmid, body=text, from_=address)
    return samples.twilio_voice(call_sid=pmid, call_status="no-answer", from_=address)


def _pmid_of(channel: str, provider_message_id: str) -> str:
    if channel == "voice":
        return provider_message_id.split(":")[0]
    return provider_message_id


class Stream:
    """Plays items at a steady rate, each retried like a provider until 2xx."""

    def __init__(self, provider: ProviderClient, items: list[Item], rate: float) -> None:
        self.provider = provider
        self.items = items
        self.rate = rate
        self.started = 0
        self.done = 0
        self.statuses: Counter[int] = Counter()

    async def run(self) -> None:
        t0 = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        for i, item in enumerate(self.items):
            delay = i / self.rate - (time.monotonic() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            self.started += 1
            tasks.append(asyncio.create_task(self._send(item)))
        await asyncio.gather(*tasks)

    async def _send(self, item: Item) -> None:
        item.answer = await self.provider.post(item.delivery)
        self.statuses.update(item.answer.statuses)
        self.done += 1

    async def reached(self, fraction: float) -> None:
        while self.started < fraction * len(self.items):
            await asyncio.sleep(0.1)


async def run_with_faults(
    provider: ProviderClient,
    items: list[Item],
    rate: float,
    faults: Callable[[Stream], Awaitable[None]],
) -> float:
    """Play the stream while `faults` breaks things; returns how long it all took."""
    stream = Stream(provider, items, rate)
    t0 = time.monotonic()
    await asyncio.gather(stream.run(), faults(stream))
    return time.monotonic() - t0


async def _restart(pipeline: Pipeline, name: str, faults: dict[str, Any]) -> None:
    t0 = time.monotonic()
    await asyncio.to_thread(pipeline.restart, name, 150)
    faults[f"{name} ready again after (s)"] = round(time.monotonic() - t0)


async def stack(action: str, component: str) -> float:
    """`deploy/local/stack.py stop|start kafka|ferretdb` (with the test run's environment)."""
    t0 = time.monotonic()
    proc = await asyncio.to_thread(
        subprocess.run, [*STACK, action, component], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, f"stack.py {action} {component}:\n{proc.stdout}\n{proc.stderr}"
    return time.monotonic() - t0


# --------------------------------------------------------------------------- the accounting


@dataclass
class Ledger:
    """What came out of the pipeline for one run's deliveries, and the exact counts checked."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def count(self, name: str, value: int) -> None:
        self.counts[name] = value

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def report(self, title: str) -> str:
        width = max(len(k) for k in self.counts)
        lines = [f"--- {title}: counts checked ---"]
        lines += [f"  {k:<{width}}  {v}" for k, v in self.counts.items()]
        return "\n".join(lines)


def _json(value: bytes | None) -> dict[str, Any]:
    return dict(orjson.loads(value or b"{}"))


def _digits_tail(address: str) -> str:
    bare = address.lstrip("+")
    return bare[-9:] if bare.isdigit() else bare


def _addresses(people: Iterable[Recipient]) -> set[str]:
    return {_digits_tail(c.address) for p in people for c in p.contacts}


async def account(
    items: list[Item],
    pipeline: Pipeline,
    topics: TopicNames,
    db: MotorDatabase,
    sandbox: SandboxClient,
    faults: dict[str, Any],
    *,
    notifier_killed: bool = False,
) -> Ledger:
    """Wait until the pipeline is idle, then count everything the run's deliveries became.

    `notifier_killed`: only a kill -9 of the notifier can cut a send off between the provider's
    answer and its recorded outcome; in any other run such a repeat is a failure.
    """
    ledger = Ledger()
    bootstrap = pipeline.kafka_bootstrap
    for name, value in faults.items():
        ledger.count(f"fault: {name}", value)

    # Ingest: every delivery ended in the pipeline.
    answers = [i.answer for i in items]
    ledger.count("deliveries sent", len(items))
    ledger.count(
        "deliveries answered 2xx and published", sum(bool(a and a.published) for a in answers)
    )
    ledger.count("deliveries retried by the provider", sum(bool(a and a.retried) for a in answers))
    ledger.count(
        "answers 503 (broker/database away)", sum(a.statuses.count(503) for a in answers if a)
    )
    ledger.count("attempts that reached no ingest", sum(a.statuses.count(0) for a in answers if a))
    for item in items:
        ledger.expect(
            item.answer is not None and item.answer.published,
            f"delivery {item.key} not accepted: {item.answer}",
        )

    # Quiet: every group at the end of every partition (this is also a check, below).
    t0 = time.monotonic()
    lags = await wait_for_zero_lag(bootstrap, pipeline.consumer_groups(), timeout_s=150)
    ledger.count("seconds until every group caught up", round(time.monotonic() - t0))
    stuck = {g: {p: n for p, n in v.items() if n} for g, v in lags.items()}
    stuck = {g: v for g, v in stuck.items() if v}
    ledger.count("consumer groups checked", len(lags))
    ledger.count("partitions checked for lag", sum(len(v) for v in lags.values()))
    ledger.count("partitions with lag > 0", sum(len(v) for v in stuck.values()))
    ledger.expect(not stuck, f"lag left: {stuck}")
    ledger.expect(  # else the check above would pass vacuously
        len(lags) == len(pipeline.consumer_groups()) and all(lags.values()),
        f"lag not read for every group: {lags}",
    )
    await _sandbox_quiet(sandbox)

    by_key = {i.key: i for i in items}
    inbound, triaged, dispatched, deliveries, deadletters = await asyncio.gather(
        *(
            read_to_end(bootstrap, topic)
            for topic in (
                topics.inbound,
                topics.triaged,
                topics.dispatched,
                topics.deliveries,
                topics.deadletter,
            )
        )
    )

    # One event per delivery, inbound and triaged.
    inbound_ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    inbound_records = 0
    for r in inbound:
        v = _json(r.value)
        key = (v["channel"], _pmid_of(v["channel"], v["provider_message_id"]))
        if key in by_key:
            inbound_ids[key].add(v["event_id"])
            inbound_records += 1
    triaged_ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    triaged_records = 0
    for r in triaged:
        v = _json(r.value)
        key = (v["channel"], _pmid_of(v["channel"], v["provider_message_id"]))
        if key in by_key:
            triaged_ids[key].add(v["event_id"])
            triaged_records += 1
    ledger.count("inbound records (incl. redelivered copies)", inbound_records)
    ledger.count("distinct inbound event ids", sum(len(v) for v in inbound_ids.values()))
    ledger.count("triaged records (incl. redelivered copies)", triaged_records)
    ledger.count("distinct triaged event ids", sum(len(v) for v in triaged_ids.values()))
    event_of: dict[str, Item] = {}
    for item in items:
        ins, outs = inbound_ids.get(item.key, set()), triaged_ids.get(item.key, set())
        ledger.expect(len(ins) == 1, f"{item.key}: {len(ins)} inbound event ids {sorted(ins)}")
        ledger.expect(ins == outs, f"{item.key}: inbound {sorted(ins)} but triaged {sorted(outs)}")
        for event_id in outs:
            event_of[event_id] = item

    # One decision per event, stored and published alike.
    stored: dict[str, dict[str, Any]] = {}
    async for doc in db["decisions"].find({"_id": {"$in": list(event_of)}}):
        stored[str(doc["_id"])] = doc
    decisions: dict[str, DispatchDecision] = {}
    for event_id, doc in stored.items():
        for out in doc.get("outputs") or ():
            if str(out["topic"]) == topics.dispatched:
                decisions[event_id] = DispatchDecision.model_validate_json(out["value"])
    published: dict[str, set[tuple[str, str, str | None]]] = defaultdict(set)
    for r in dispatched:
        v = _json(r.value)
        if v.get("event_id") in event_of:
            published[v["event_id"]].add((v["decision_id"], v["action"], v.get("case_id")))
    ledger.count("decisions stored (one per event)", len(stored))
    ledger.count("decisions on dispatched (distinct events)", len(published))
    for event_id, item in event_of.items():
        d = decisions.get(event_id)
        ledger.expect(d is not None, f"{item.key}: event {event_id} has no stored decision")
        if d is None:
            continue
        want = {(d.decision_id, d.action.value, d.case_id)}
        ledger.expect(
            published.get(event_id) == want,
            f"{item.key}: published {published.get(event_id)} but stored {want}",
        )

    # One case per report or missed call; greetings are logged without one.
    actions = Counter(d.action.value for d in decisions.values())
    for action, n in sorted(actions.items()):
        ledger.count(f"decisions: {action}", n)
    ledger.expect(
        set(actions) <= {"new_case", "merged", "followup", "callback", "greeting"},
        f"unexpected actions {actions}",
    )
    opening = {
        e: d
        for e, d in decisions.items()
        if d.action in (DispatchAction.NEW_CASE, DispatchAction.CALLBACK)
    }
    cases: dict[str, list[dict[str, Any]]] = defaultdict(list)
    case_ids = {d.case_id for d in decisions.values() if d.case_id}
    async for doc in db["cases"].find(
        {"_id": {"$in": sorted(case_ids)}}, projection={"opened_by": 1, "kind": 1}
    ):
        cases[str(doc["_id"])].append(doc)
    opened_by: Counter[str] = Counter()
    async for doc in db["cases"].find(
        {"opened_by": {"$in": list(opening)}}, projection={"opened_by": 1}
    ):
        opened_by[str(doc["opened_by"])] += 1
    ledger.count("cases opened (new case or callback)", len(opening))
    ledger.count("case documents found for them", sum(opened_by.values()))
    for event_id, d in decisions.items():
        item = event_of[event_id]
        if d.action == DispatchAction.GREETING:
            ledger.expect(d.case_id is None, f"{item.key}: greeting with a case {d.case_id}")
            continue
        ledger.expect(
            d.case_id is not None and len(cases.get(d.case_id, [])) == 1,
            f"{item.key}: {d.action.value} but case {d.case_id} has "
            f"{len(cases.get(d.case_id or '', []))} documents",
        )
        if event_id in opening:
            ledger.expect(
                opened_by[event_id] == 1 and cases[d.case_id or ""][0].get("opened_by") == event_id,
                f"{item.key}: opened {opened_by[event_id]} cases (expected exactly 1)",
            )

    # One first alert per case opened with an alert: the sandbox's messages and the outcomes.
    messages = await sandbox.messages()
    outcomes = [DeliveryOutcome.model_validate_json(r.value or b"") for r in deliveries]
    reported_ids = {o.provider_message_id for o in outcomes if o.provider_message_id}
    by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in messages:
        for case_id in set(CASE_ID.findall(m["text"])):
            by_case[case_id].append(m)
    first_alerts: dict[str, set[str]] = defaultdict(set)
    for o in outcomes:
        if o.first_alert and o.status.value == "sent" and o.case_id:
            first_alerts[o.case_id].add(o.delivery_id)
    alerted = exact = duplicated = interrupted = 0
    for event_id, d in opening.items():
        item, case_id = event_of[event_id], d.case_id or ""
        level0 = d.escalation[0].recipients if d.escalation else []
        to_level0 = [
            m for m in by_case.get(case_id, []) if _digits_tail(str(m["to"])) in _addresses(level0)
        ]
        unreported = [m for m in to_level0 if m["provider_message_id"] not in reported_ids]
        if not d.alert:
            ledger.expect(
                not to_level0, f"{case_id}: opened without an alert but got {len(to_level0)}"
            )
            continue
        alerted += 1
        cut_off = min(len(unreported), max(0, len(to_level0) - len(level0)))
        interrupted += cut_off
        if len(to_level0) == len(level0):
            exact += 1
        else:
            duplicated += max(0, len(to_level0) - len(level0) - cut_off)
        ledger.expect(
            len(to_level0) - cut_off == len(level0),
            f"{item.key} {case_id}: {len(to_level0)} alert message(s) to {len(level0)} level-0 "
            f"recipient(s), {len(unreported)} without an outcome: "
            + "; ".join(f"{m['channel']}→{m['to']} {m['at']}" for m in to_level0),
        )
        ledger.expect(
            len(first_alerts.get(case_id, set())) == 1,
            f"{case_id}: {len(first_alerts.get(case_id, set()))} first-alert outcomes",
        )
    ledger.count("cases that needed a first alert", alerted)
    ledger.count("... with exactly one alert per level-0 recipient", exact)
    ledger.count(
        "... with a first-alert delivery outcome",
        sum(
            1
            for d in opening.values()
            if d.alert and len(first_alerts.get(d.case_id or "", set())) == 1
        ),
    )
    ledger.count("duplicate alerts", duplicated)
    ledger.count("repeats of a send the notifier's kill -9 cut off", interrupted)
    if not notifier_killed:
        ledger.expect(interrupted == 0, f"{interrupted} repeated alert(s) with no notifier killed")
    ledger.count(
        "sandbox messages naming a case the run opened",
        sum(len(by_case.get(d.case_id or "", [])) for d in opening.values()),
    )

    # Citizens: one receipt per decision that asks for one, at most one courtesy reply each.
    receipts_wanted: Counter[tuple[str, str]] = Counter()
    courtesy_wanted: Counter[str] = Counter()
    for event_id, d in decisions.items():
        item = event_of[event_id]
        if d.citizen_reply.value == "receipt" and d.case_id:
            receipts_wanted[(_digits_tail(item.address), d.case_id)] += 1
        elif d.citizen_reply.value == "courtesy":
            courtesy_wanted[_digits_tail(item.address)] += 1
    citizens = {_digits_tail(i.address) for i in items}
    receipts_got: Counter[tuple[str, str]] = Counter()
    courtesy_got: Counter[str] = Counter()
    for m in messages:
        to = _digits_tail(str(m["to"]))
        if to not in citizens:
            continue
        found = CASE_ID.findall(m["text"])
        if found:
            receipts_got[(to, found[0])] += 1
        else:  # the only reply to a citizen without a case reference
            courtesy_got[to] += 1
    ledger.count("receipts asked for", sum(receipts_wanted.values()))
    ledger.count("receipts received by citizens", sum(receipts_got[k] for k in receipts_wanted))
    ledger.count("courtesy replies asked for", sum(courtesy_wanted.values()))
    ledger.count("courtesy replies received", sum(courtesy_got[k] for k in courtesy_wanted))
    wrong_receipts = {
        k: (n, receipts_got[k]) for k, n in receipts_wanted.items() if receipts_got[k] != n
    }
    ledger.expect(
        not wrong_receipts, f"receipts (wanted, got): {dict(list(wrong_receipts.items())[:10])}"
    )
    ledger.expect(
        all(n <= 1 for n in courtesy_wanted.values()), "a citizen was owed two courtesy replies"
    )
    wrong_courtesy = {
        k: (n, courtesy_got[k]) for k, n in courtesy_wanted.items() if courtesy_got[k] != n
    }
    ledger.expect(
        not wrong_courtesy, f"courtesy (wanted, got): {dict(list(wrong_courtesy.items())[:10])}"
    )

    ledger.count("dead letters", len(deadletters))
    ledger.expect(
        not deadletters, f"dead letters: {[_json(r.value).get('detail') for r in deadletters][:5]}"
    )
    return ledger


async def _sandbox_quiet(sandbox: SandboxClient, seconds: float = 2.0) -> None:
    last = -1
    while True:
        count = int((await sandbox.stats())["messages"])
        if count == last:
            return
        last = count
        await asyncio.sleep(seconds)


def conclude(title: str, ledger: Ledger, measured: Callable[[str], None]) -> None:
    measured(ledger.report(title))
    assert not ledger.problems, f"{len(ledger.problems)} problem(s):\n" + "\n".join(
        ledger.problems[:40]
    )


# --------------------------------------------------------------------------- tests


async def test_kill_9_each_service_during_2000_messages(
    pipeline: Pipeline,
    topic_names: TopicNames,
    samples: Samples,
    provider: ProviderClient,
    sandbox: SandboxClient,
    db: MotorDatabase,
    measured: Callable[[str], None],
) -> None:
    items = make_items(samples, 2000, random.Random(SEED), "ka")
    faults: dict[str, Any] = {}

    async def kills(stream: Stream) -> None:
        # One service at a time, each restarted at once: a replacement process. The restarts
        # are not awaited one by one: a consumer's replacement waits out the dead member's
        # session in its group (30 s; faust's 60 s) before it starts, and the stream goes on.
        restarts: list[asyncio.Task[None]] = []
        for name, at in (
            ("ingest", 0.1),
            ("classifier", 0.2),
            ("dispatcher", 0.35),
            ("notifier", 0.5),
        ):
            await stream.reached(at)
            faults[f"kill -9 {name} at message"] = stream.started
            pipeline.kill(name)
            await asyncio.sleep(0.5)
            restarts.append(asyncio.create_task(_restart(pipeline, name, faults)))
        await asyncio.gather(*restarts)

    elapsed = await run_with_faults(provider, items, 40.0, kills)
    faults["stream duration (s)"] = round(elapsed)
    ledger = await account(items, pipeline, topic_names, db, sandbox, faults, notifier_killed=True)
    conclude("kill -9 of each service", ledger, measured)


async def test_broker_restart_during_2000_messages(
    pipeline: Pipeline,
    topic_names: TopicNames,
    samples: Samples,
    provider: ProviderClient,
    sandbox: SandboxClient,
    db: MotorDatabase,
    measured: Callable[[str], None],
) -> None:
    items = make_items(samples, 2000, random.Random(SEED + 1), "kb")
    faults: dict[str, Any] = {}

    async def restart_broker(stream: Stream) -> None:
        await stream.reached(0.3)
        faults["broker stopped at message"] = stream.started
        faults["broker stop took (s)"] = round(await stack("stop", "kafka"))
        faults["broker start took (s)"] = round(await stack("start", "kafka"))
        await asyncio.to_thread(pipeline.wait_ready, None, 120)

    elapsed = await run_with_faults(provider, items, 25.0, restart_broker)
    faults["stream duration (s)"] = round(elapsed)
    ledger = await account(items, pipeline, topic_names, db, sandbox, faults)
    conclude("broker restart", ledger, measured)


async def test_database_stopped_20s_during_2000_messages(
    pipeline: Pipeline,
    topic_names: TopicNames,
    samples: Samples,
    provider: ProviderClient,
    sandbox: SandboxClient,
    db: MotorDatabase,
    measured: Callable[[str], None],
) -> None:
    items = make_items(samples, 2000, random.Random(SEED + 2), "kc")
    faults: dict[str, Any] = {}

    async def stop_database(stream: Stream) -> None:
        await stream.reached(0.3)
        faults["database stopped at message"] = stream.started
        await stack("stop", "ferretdb")
        await asyncio.sleep(20)
        await stack("start", "ferretdb")
        faults["database down (s)"] = 20
        await asyncio.to_thread(pipeline.wait_ready, None, 120)

    elapsed = await run_with_faults(provider, items, 25.0, stop_database)
    faults["stream duration (s)"] = round(elapsed)
    ledger = await account(items, pipeline, topic_names, db, sandbox, faults)
    conclude("database stopped for 20 s", ledger, measured)
