"""`hotline simulate`: play a scenario through the real, signed webhooks and watch it flow.

Every message is sent to ingest exactly as its provider would send it (`hotline_ingest.samples`
signs with the same secrets ingest verifies with). An observer tails the pipeline's topics
(triaged, dispatched, deliveries, case events) from where they stood when the scenario started
and prints one line per step of each item's journey: received → triaged → case and officer →
alert → acknowledgement or escalation → citizen reply.

The humans in the loop are played too: an officer opening the acknowledgement link they
received (read from the provider sandbox), an officer answering "OK <case id>" on Zalo, the
Director recording a directive, a call-taker recording a returned call.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

from hotline.contracts import (
    CaseEvent,
    DeliveryOutcome,
    DispatchDecision,
    TriagedEvent,
    decode,
)
from hotline.privacy import mask_address
from hotline_cli.settings import CliSettings
from hotline_dispatcher.text import count_places
from hotline_ingest.samples import Delivery, Samples
from hotline_ingest.settings import IngestSettings

ACK_URL = re.compile(r"https?://\S+/ack/[A-Za-z0-9_\-.=~]+")

COLOURS = {
    "received": "\033[37m",
    "triaged": "\033[36m",
    "case": "\033[33m",
    "merged": "\033[33m",
    "alert": "\033[35m",
    "escalated": "\033[31;1m",
    "ack": "\033[32;1m",
    "reply": "\033[34m",
    "directive": "\033[32m",
    "callback": "\033[32m",
    "rejected": "\033[31m",
    "skipped": "\033[90m",
}
RESET = "\033[0m"


# --------------------------------------------------------------------------- scenario


@dataclass
class Step:
    """One scripted item: a citizen's message or call, or an action by a person."""

    at: float
    id: str | None = None
    channel: str | None = None
    kind: str = "message"
    text: str = ""
    sender: dict[str, str] = field(default_factory=dict)
    place: str | None = None
    act: str | None = None
    case_of: str | None = None
    level: int = 0
    outcome: str | None = None
    report_back_minutes: int = 240


@dataclass
class Scenario:
    name: str
    description: str
    steps: list[Step]
    escalation_timeouts_s: dict[str, int] = field(default_factory=dict)


def load_scenario(name_or_path: str) -> Scenario:
    """A scripted scenario by name (`scenarios/<name>.yaml`) or path; "flood" is generated
    (`flood_scenario`, at its default rate and duration)."""
    if name_or_path == "flood":
        return flood_scenario()
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        text = (
            resources.files("hotline_cli")
            .joinpath("scenarios", f"{name_or_path}.yaml")
            .read_text(encoding="utf-8")
        )
        raw = yaml.safe_load(text)
    steps = [Step(**s) for s in raw.get("steps", [])]
    steps.sort(key=lambda s: s.at)
    return Scenario(
        name=raw["name"],
        description=raw.get("description", ""),
        steps=steps,
        escalation_timeouts_s=raw.get("escalation_timeouts_s", {}),
    )


def with_fresh_citizens(scenario: Scenario, salt: int) -> Scenario:
    """The scenario with its citizens given identities of this run (`salt`, 1-999).

    The local case file keeps earlier runs: without this, a second `make run` the same day
    would find every scripted citizen with an open case and show their reports as follow-ups.
    The last three digits of each citizen's number or user id are shifted by `salt`, the same
    way for every step, so one citizen stays one person within the run (their follow-up, their
    second greeting of the day); officers replying on their roster contacts are not scenario
    senders and keep theirs.
    """

    def shift(value: str) -> str:
        digits = [i for i, ch in enumerate(value) if ch.isdigit()][-3:]
        if len(digits) < 3:
            return value
        old = int("".join(value[i] for i in digits))
        new = f"{(old + salt) % 1000:03d}"
        chars = list(value)
        for i, ch in zip(digits, new, strict=True):
            chars[i] = ch
        return "".join(chars)

    steps = [
        replace(
            step,
            sender={
                k: shift(v) if k in ("phone", "user_id") else v for k, v in step.sender.items()
            },
        )
        if step.act is None
        else step
        for step in scenario.steps
    ]
    return replace(scenario, steps=steps)


def paced(
    scenario: Scenario, *, rate: float | None = None, duration: float | None = None, salt: int = 1
) -> Scenario:
    """A scripted scenario with this run's citizens (`with_fresh_citizens`, `salt`), its clock
    rescaled (`hotline simulate --scenario day --rate R` or `--duration D`).

    A script has its own messages (the day's 35, written over 60 s, 0.58 per second): `rate`
    plays them at that many per second on average, `duration` fits the whole script, acts
    included, into that many seconds; one or the other (`options_error`). Every step keeps its
    place in the script. The services' escalation timeouts are theirs, not the script's: a
    faster day still escalates its unanswered P1 after the same seconds, and an act waits for
    what it needs (its case, an alert at its level) as it does at the written pace.

    Repeating a script is not offered: its reports would be the same words about the same
    places, which the dispatcher rightly merges into the first round's cases for two hours
    (`merge:` in the routing file); the flood scenario is the surge of new cases.
    """
    fresh = with_fresh_citizens(scenario, salt)
    messages = sum(1 for s in scenario.steps if s.act is None)
    last = max((s.at for s in scenario.steps), default=0.0)
    if last <= 0 or messages == 0 or (rate is None and duration is None):
        return fresh
    scale = duration / last if duration is not None else messages / last / (rate or 1.0)
    pace = f"at {rate:g} messages/s" if rate is not None else f"over {duration:g} s"
    return replace(
        fresh,
        steps=[replace(step, at=step.at * scale) for step in fresh.steps],
        description=f"{scenario.description} (played {pace})",
    )


def scenario_timeouts(name_or_path: str) -> dict[str, int]:
    """Escalation timeouts a scenario wants (`make run` starts the services with them)."""
    try:
        return load_scenario(name_or_path).escalation_timeouts_s
    except (OSError, KeyError, FileNotFoundError):
        return {}


# --------------------------------------------------------------------------- deliveries


def build_delivery(samples: Samples, step: Step, now: datetime) -> Delivery:
    """The signed HTTP request a provider would send for this step."""
    ms = int(now.timestamp() * 1000)
    s = step.sender
    if step.channel == "zalo":
        return samples.zalo(text=step.text, user_id=s["user_id"], timestamp_ms=ms)
    if step.channel == "viber":
        return samples.viber(
            text=step.text, sender_id=s["user_id"], name=s.get("name", ""), timestamp_ms=ms
        )
    if step.channel == "whatsapp":
        wa_id = s["phone"].lstrip("+")
        message = samples.whatsapp_message(wa_id=wa_id, text=step.text, timestamp_s=ms // 1000)
        return samples.whatsapp(messages=[message], name=s.get("name", ""))
    if step.channel == "sms":
        return samples.twilio_sms(body=step.text, from_=s["phone"])
    if step.channel == "voice":
        status = "no-answer" if step.kind in ("missed", "call_missed") else "completed"
        return samples.twilio_voice(call_status=status, from_=s["phone"])
    if step.channel == "desk":
        return samples.desk(
            caller_number=s.get("phone", ""), summary=step.text, place=step.place or ""
        )
    if step.channel == "web":
        return samples.web(text=step.text, phone=s.get("phone", ""), name=s.get("name", ""))
    raise ValueError(f"step {step.id}: unknown channel {step.channel!r}")


# --------------------------------------------------------------------------- observer


class Observer:
    """Tails the pipeline's topics and keeps what the view and the actors need."""

    def __init__(self, settings: CliSettings, view: View) -> None:
        self.settings = settings
        self.view = view
        self.consumer: AIOKafkaConsumer | None = None
        self.step_of_provider_id: dict[str, str] = {}
        self.step_of_event: dict[str, str] = {}
        self.case_of_step: dict[str, str] = {}
        self.decision_of_step: dict[str, DispatchDecision] = {}
        self.steps_of_case: dict[str, list[str]] = defaultdict(list)
        self.alerts: dict[tuple[str, int], list[DeliveryOutcome]] = defaultdict(list)
        self.escalated_levels: dict[str, int] = {}
        self.triaged: dict[str, TriagedEvent] = {}
        self.decisions: list[DispatchDecision] = []
        self.deliveries: list[DeliveryOutcome] = []
        self.case_events: list[CaseEvent] = []
        self.first_alert_at: dict[str, datetime] = {}
        self.opened: set[str] = set()
        """Cases (and callback tasks) this run opened; others were there before it."""

    async def start(self) -> None:
        t = self.settings.topics
        topics = [t.triaged, t.dispatched, t.deliveries, t.case_events]
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
        )
        await self.consumer.start()
        tps = await topic_partitions(self.consumer, topics)
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end now, so nothing produced after start is missed
            await self.consumer.position(tp)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def run(self) -> None:
        assert self.consumer is not None
        t = self.settings.topics
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for r in records:
                    if not r.value:
                        continue
                    if tp.topic == t.triaged:
                        self._on_triaged(decode(TriagedEvent, r.value))
                    elif tp.topic == t.dispatched:
                        self._on_decision(decode(DispatchDecision, r.value))
                    elif tp.topic == t.deliveries:
                        self._on_delivery(decode(DeliveryOutcome, r.value))
                    elif tp.topic == t.case_events:
                        self._on_case_event(decode(CaseEvent, r.value))

    def _on_triaged(self, event: TriagedEvent) -> None:
        # A call's provider id is "<CallSid>:<fact>" (missed, answered, ...): match the call.
        pid = event.provider_message_id
        step = self.step_of_provider_id.get(pid) or self.step_of_provider_id.get(pid.split(":")[0])
        if step is None:
            return
        self.step_of_event[event.event_id] = step
        self.triaged[step] = event
        tr = event.triage
        self.view.line(
            step,
            "triaged",
            f"{tr.category.value} {tr.priority.value} {tr.location or '-'} "
            f"({tr.language.value}, confidence {tr.confidence:.2f})",
        )

    def _on_decision(self, decision: DispatchDecision) -> None:
        step = self.step_of_event.get(decision.event_id)
        if step is None:
            return
        self.decisions.append(decision)
        self.decision_of_step[step] = decision
        action = decision.action.value
        if decision.case_id:
            self.case_of_step[step] = decision.case_id
            self.steps_of_case[decision.case_id].append(step)
            if action in ("new_case", "callback"):
                self.opened.add(decision.case_id)
        who = ""
        if decision.assignee:
            a = decision.assignee
            who = f" → {decision.responsible_unit}, {a.rank or ''} {a.name}".rstrip()
        if action == "new_case":
            self.view.line(step, "case", f"{decision.case_id} opened{who}")
        elif action in ("merged", "followup"):
            before = "" if decision.case_id in self.opened else ", a case opened before this run"
            self.view.line(
                step, "merged", f"joins {decision.case_id} ({action}, no new alert{before})"
            )
        elif action == "callback":
            self.view.line(step, "case", f"callback task {decision.case_id}{who}")
        elif action == "greeting":
            reply = "courtesy reply" if decision.citizen_reply.value == "courtesy" else "no reply"
            self.view.line(step, "case", f"greeting logged, {reply}")
        elif action == "acknowledgement":
            self.view.line(step, "ack", f"officer reply acknowledges {decision.case_id}")

    def _on_delivery(self, d: DeliveryOutcome) -> None:
        self.deliveries.append(d)
        step = self._step_for(d.case_id, d.event_id)
        purpose = d.purpose.value
        target = f"{d.channel} → {d.recipient_role} {mask_address(d.address_masked)}"
        outcome = d.status.value + (f" ({d.error})" if d.error and d.status.value != "sent" else "")
        if purpose.startswith("citizen_"):
            kind = purpose.removeprefix("citizen_")
            self.view.line(step, "reply", f"{kind} to citizen on {d.channel}: {outcome}")
            return
        if d.case_id is not None and d.level is not None:
            self.alerts[(d.case_id, d.level)].append(d)
        if d.first_alert and d.case_id and d.status.value == "sent":
            self.first_alert_at.setdefault(d.case_id, d.at)
        label = "escalated" if purpose == "escalation" else "alert"
        level = f" L{d.level}" if d.level is not None else ""
        self.view.line(step, label, f"{purpose}{level} {target}: {outcome}")

    def _on_case_event(self, e: CaseEvent) -> None:
        self.case_events.append(e)
        step = self._step_for(e.case_id, None)
        actor = e.actor.name or e.actor.id
        if e.type.value == "acknowledged":
            self.view.line(step, "ack", f"{e.case_id} acknowledged by {actor} ({e.actor.role})")
        elif e.type.value == "escalated":
            self.escalated_levels[e.case_id] = int(e.data.get("level", 0))
        elif e.type.value == "directive_added":
            self.view.line(step, "directive", f"{actor}: {e.text}")
        elif e.type.value == "callback_done":
            self.view.line(step, "callback", f"{e.case_id} returned by {actor}")
        elif e.type.value == "resolved":
            self.view.line(step, "ack", f"{e.case_id} resolved by {actor}")

    def _step_for(self, case_id: str | None, event_id: str | None) -> str:
        if event_id:  # an event id, or the id of the decision about it ("dec-<event id>")
            for candidate in (event_id, event_id.removeprefix("dec-")):
                if candidate in self.step_of_event:
                    return self.step_of_event[candidate]
        if case_id and self.steps_of_case.get(case_id):
            return self.steps_of_case[case_id][0]
        return case_id or "-"


async def topic_partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics` (a group-less consumer only knows what it is assigned)."""
    metadata = await consumer._client.fetch_all_metadata()
    return [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(metadata.partitions_for_topic(topic) or [])
    ]


class View:
    """The live terminal view: one line per thing that happened, with elapsed time."""

    def __init__(self, quiet: bool = False, colour: bool = True) -> None:
        self.start = time.monotonic()
        self.quiet = quiet
        self.colour = colour

    def line(self, step: str, stage: str, text: str) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        colour, reset = (COLOURS.get(stage, ""), RESET) if self.colour else ("", "")
        print(f"[{elapsed:6.1f}s] {step:<10} {colour}{stage:<9}{reset} {text}", flush=True)


# --------------------------------------------------------------------------- player


ACKNOWLEDGEABLE = frozenset({"alert", "escalation", "callback_task"})
"""Deliveries that ask their recipient to act (an inform only tells them)."""


class Player:
    def __init__(self, settings: CliSettings, view: View, observer: Observer) -> None:
        self.settings = settings
        self.view = view
        self.observer = observer
        self.samples = Samples(IngestSettings(), base_url=settings.ingest_url)
        self.http = httpx.AsyncClient(timeout=10.0)
        self.sent = 0
        self.accepted = 0
        self.accepted_steps: list[str] = []
        self.rejected: Counter[int] = Counter()
        self.ops_tokens = {"director": "dev-director-token", "staff": "dev-staff-token"}
        self.acknowledged: set[str] = set()
        """Cases an `ack_first` act has acknowledged (or is acknowledging)."""

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, step: Step) -> None:
        delivery = build_delivery(self.samples, step, datetime.now(UTC))
        provider_id = _provider_id(delivery)
        if step.id and provider_id:
            self.observer.step_of_provider_id[provider_id] = step.id
        self.sent += 1
        try:
            resp = await self.http.request(
                delivery.method,
                self.settings.ingest_url + delivery.path,
                content=delivery.body,
                headers=delivery.headers,
            )
        except httpx.HTTPError as exc:
            self.rejected[0] += 1
            self.view.line(step.id or "-", "rejected", f"ingest unreachable: {exc}")
            return
        if resp.status_code < 300:
            self.accepted += 1
            if step.id:
                self.accepted_steps.append(step.id)
            preview = (step.text or f"({step.kind} call)").replace("\n", " ")
            self.view.line(step.id or "-", "received", f"{step.channel:<8} {preview[:70]}")
        else:
            self.rejected[resp.status_code] += 1
            self.view.line(step.id or "-", "rejected", f"HTTP {resp.status_code}: {resp.text[:80]}")

    async def act(self, step: Step) -> None:
        assert step.case_of is not None
        case_id = await self._wait_for(lambda: self.observer.case_of_step.get(step.case_of or ""))
        if case_id is None:
            self.view.line(step.case_of, "rejected", f"{step.act}: no case appeared")
            return
        if step.act in ("ack", "ack_first", "ack_reply") and not await self._wait_for(
            lambda: case_id in self.observer.opened, timeout_s=3.0
        ):
            # The report joined a case of an earlier run (same words, same place, within the
            # merge window): its alerts went out then, to an officer this run does not know,
            # and there is no link here to open. (The
            # wait: the case's opening decision may be on a partition the observer reads later.)
            self.view.line(
                step.case_of, "skipped", f"{step.act}: {case_id} was alerted before this run"
            )
            return
        if step.act == "ack":
            await self._ack_link(step, case_id)
        elif step.act == "ack_first":
            # The first answer to a case counts; the officer does not open the link again for
            # each further citizen who reports the same incident.
            if case_id not in self.acknowledged:
                self.acknowledged.add(case_id)
                await self._ack_link(step, case_id)
        elif step.act == "ack_reply":
            await self._ack_reply(step, case_id)
        elif step.act == "directive":
            await self._ops(
                "director",
                "POST",
                f"/cases/{case_id}/directives",
                {"text": step.text, "due_in_minutes": step.report_back_minutes},
            )
        elif step.act == "callback":
            await self._ops(
                "staff",
                "POST",
                f"/cases/{case_id}/callback-done",
                {"reached": True, "note": step.outcome},
            )
        else:
            raise ValueError(f"unknown act {step.act!r}")

    async def _ack_link(self, step: Step, case_id: str) -> None:
        """The person alerted at `level` opens the link in the message they received (not
        somebody only informed at that level, such as the Director of every P1)."""
        deliveries = await self._wait_for(
            lambda: [
                d
                for d in self.observer.alerts.get((case_id, step.level), [])
                if d.status.value == "sent" and d.purpose.value in ACKNOWLEDGEABLE
            ],
            timeout_s=90,
        )
        if not deliveries:
            self.view.line(step.case_of or "-", "rejected", f"no alert at level {step.level}")
            return
        resp = await self.http.get(
            f"{self.settings.sandbox_url}/sandbox/messages", params={"contains": case_id}
        )
        links = [
            m
            for m in resp.json().get("messages", [])
            if ACK_URL.search(m.get("text", "") or "") and _same_recipient(m, deliveries[0])
        ]
        if not links:
            self.view.line(step.case_of or "-", "rejected", "alert with a link not found")
            return
        match = ACK_URL.search(links[-1]["text"])
        assert match is not None
        await self.http.post(match.group(0))

    async def _ack_reply(self, step: Step, case_id: str) -> None:
        """The assignee answers "OK <case id>" from their own Zalo account."""
        decision = self.observer.decision_of_step.get(step.case_of or "")
        contact = None
        if decision and decision.assignee:
            contact = next((c for c in decision.assignee.contacts if c.channel == "zalo"), None)
        if contact is None:
            self.view.line(step.case_of or "-", "rejected", "assignee has no Zalo contact")
            return
        reply = Step(
            at=step.at,
            id=f"{step.case_of}+",
            channel="zalo",
            text=f"OK {case_id}",
            sender={"user_id": contact.address},
        )
        await self.send(reply)

    async def _ops(self, role: str, method: str, path: str, body: dict[str, Any]) -> None:
        token = self.ops_tokens[role]
        resp = await self.http.request(
            method,
            f"{self.settings.dispatcher_url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        if resp.status_code >= 400:
            self.view.line("-", "rejected", f"{method} {path}: {resp.status_code} {resp.text[:80]}")

    async def _wait_for(self, probe: Any, timeout_s: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            await asyncio.sleep(0.2)
        return None


def _provider_id(delivery: Delivery) -> str | None:
    """The provider message id inside a signed delivery (to follow it through the pipeline)."""
    import json
    from urllib.parse import parse_qs

    try:
        if delivery.headers.get("Content-Type", "").startswith("application/x-www-form"):
            form = parse_qs(delivery.body.decode())
            ids = form.get("MessageSid") or form.get("CallSid")
            return ids[0] if ids else None
        data = json.loads(delivery.body)
    except (ValueError, UnicodeDecodeError):
        return None
    if "message" in data and isinstance(data["message"], dict) and "msg_id" in data["message"]:
        return str(data["message"]["msg_id"])
    if "message_token" in data:
        return str(data["message_token"])
    if "entry" in data:
        value = data["entry"][0]["changes"][0]["value"]
        return str(value["messages"][0]["id"])
    for key in ("summary_id", "submission_id", "call_id"):
        if key in data:
            return str(data[key])
    return None


def _same_recipient(message: dict[str, Any], delivery: DeliveryOutcome) -> bool:
    """A sandbox message went to the person a delivery outcome names.

    The channel must be the same and the masked address must match. The outcome masks the
    contact's address as the roster writes it, while the sandbox records it as the provider
    received it (Twilio "+84…", WhatsApp and ZNS "84…"): a phone number is compared in each
    of its spellings, so a colleague alerted on the same channel is never taken for them.
    """
    if message.get("channel") != delivery.channel:
        return False
    return delivery.address_masked in {
        mask_address(form) for form in _address_forms(str(message.get("to", "")))
    }


def _address_forms(address: str) -> set[str]:
    """An address as written, plus a phone number's +84…, 84… and 0… spellings."""
    forms = {address}
    compact = re.sub(r"[\s.\-]", "", address)
    digits = compact.lstrip("+")
    if digits.isdigit() and len(digits) >= 8:
        national = (
            digits[2:] if digits.startswith("84") else digits[1:] if digits.startswith("0") else ""
        )
        forms |= {digits, "+" + digits}
        if national:
            forms |= {"0" + national, "84" + national, "+84" + national}
    return forms


# --------------------------------------------------------------------------- flood

FLOOD_TEMPLATES = [
    (
        "Nước lên nhanh ở {place}, nhà tôi có người già và trẻ nhỏ bị mắc kẹt trên mái, cứu với",
        "fire_rescue",
    ),
    ("nuoc ngap sau o {place}, can ca no cho nguoi ra ngoai gap", "fire_rescue"),
    ("Cây đổ chắn ngang đường ở {place}, xe không qua được", "traffic"),
    ("Sạt lở đất ở {place}, đường bị vùi lấp", "traffic"),
    ("Có người bị nước cuốn trôi ở {place}, mọi người đang tìm", "fire_rescue"),
    ("Mất điện cả xóm ở {place}, dây điện đứt rơi xuống nước rất nguy hiểm", "other"),
    ("Có kẻ lợi dụng lũ vào trộm đồ nhà dân đi sơ tán ở {place}", "theft"),
    ("Hôm nay ở {place} nước đã rút, cảm ơn các anh", "greeting"),
    ("Chào anh, bên em ở {place} vẫn an toàn", "greeting"),
]
FLOOD_PLACES = [
    "Phú Đa",
    "Vinh Thanh",
    "Quảng Thái",
    "Sịa",
    "Hương Văn",
    "Tứ Hạ",
    "Thủy Châu",
    "Phú Bài",
    "Điền Hải",
    "Phong Hiền",
    "Lộc Điền",
    "Kim Long",
    "Vỹ Dạ",
    "A Lưới",
    "Khe Tre",
]


FLOOD_ESCALATION_TIMEOUTS_S = {"P1": 30, "P2": 90, "P3": 300}
"""The flood's compressed acknowledgement timeouts (`make run SCENARIO=flood` starts the
dispatcher with them, as the day scenario's): a case nobody takes climbs the chain while the
surge is still on screen, instead of two minutes after it (the production P1 timeout)."""
FLOOD_ACK_SHARE = 0.8
FLOOD_ACK_DELAY_S = (8.0, 25.0)


def flood_steps(
    rate: float,
    duration: float,
    seed: int = 7,
    *,
    ack_share: float = FLOOD_ACK_SHARE,
    ack_delay_s: tuple[float, float] = FLOOD_ACK_DELAY_S,
) -> list[Step]:
    """Hundreds of reports in minutes across districts (a flood-season surge), and the duty
    officers answering them: after a report, with probability `ack_share`, the officer alerted
    for its case acknowledges through the alert's link `ack_delay_s` later (`ack_first`: once
    per case, however many citizens report it). The other cases escalate."""
    rng = random.Random(seed)
    count = max(1, int(rate * duration))
    channels = ["sms", "zalo", "viber", "whatsapp"]
    steps = []
    for i in range(count):
        template, category = rng.choice(FLOOD_TEMPLATES)
        channel = rng.choice(channels)
        phone = f"09{rng.randrange(10**8):08d}"
        sender = {
            "sms": {"phone": phone},
            "zalo": {"user_id": f"88{rng.randrange(10**14):014d}"},
            "viber": {"user_id": f"fl{rng.randrange(10**10):010d}==", "name": "Citizen"},
            "whatsapp": {"phone": "84" + phone[1:], "name": "Citizen"},
        }[channel]
        steps.append(
            Step(
                at=i / rate,
                id=f"f{i:04d}",
                channel=channel,
                text=template.format(place=rng.choice(FLOOD_PLACES)),
                sender=sender,
            )
        )
        if category != "greeting" and rng.random() < ack_share:
            steps.append(
                Step(at=i / rate + rng.uniform(*ack_delay_s), act="ack_first", case_of=f"f{i:04d}")
            )
    steps.sort(key=lambda s: s.at)
    return steps


def flood_scenario(rate: float = 10.0, duration: float = 60.0) -> Scenario:
    return Scenario(
        name="flood",
        description="a flood-season surge across districts",
        steps=flood_steps(rate, duration),
        escalation_timeouts_s=dict(FLOOD_ESCALATION_TIMEOUTS_S),
    )


# --------------------------------------------------------------------------- the day's figures

REPORT_ACTIONS = frozenset({"new_case", "merged", "followup"})
"""Decisions the summary counts as reports (its "reports" line; callbacks are counted apart)."""


@dataclass(frozen=True)
class AckFigures:
    """One priority's cases opened in the run, how many were acknowledged, and the median wait
    from the report's arrival at ingest to the first acknowledgement."""

    priority: str
    cases: int
    acknowledged: int
    median_s: float


@dataclass(frozen=True)
class DayFigures:
    """The breakdowns the Director reports, each as (name, count), largest first, then name.

    `messages_by_channel` counts citizens' messages and calls (officers' "OK <case>" replies
    are `officer_replies`); the `reports_by_*` count the decisions of the summary's "reports"
    line (new cases, merged reports, follow-ups); `time_to_acknowledge` lists, in priority
    order, only the priorities with at least one acknowledged case (callback tasks left out,
    as the dispatcher's daily statistics leave them out).
    """

    messages_by_channel: list[tuple[str, int]] = field(default_factory=list)
    officer_replies: int = 0
    reports_by_category: list[tuple[str, int]] = field(default_factory=list)
    reports_by_district: list[tuple[str, int]] = field(default_factory=list)
    reports_by_place: list[tuple[str, int]] = field(default_factory=list)
    """Reports per locality they name (a commune, ward or landmark), most first."""
    reports_by_unit: list[tuple[str, int]] = field(default_factory=list)
    time_to_acknowledge: list[AckFigures] = field(default_factory=list)


SUMMARY_PLACES = 5
"""How many of the most reported places the summary names."""


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def day_figures(
    decisions: Iterable[DispatchDecision], case_events: Iterable[CaseEvent]
) -> DayFigures:
    """Fold what the observer collected into the Director's breakdowns (pure, deterministic).

    A decision seen twice (a redelivery) counts once. A case's time to acknowledge runs from
    its opening report's `received_at` to its earliest `acknowledged` event; its priority is
    the one that event carries (the case's, should a merged report have raised it), else the
    opening decision's. Acknowledgements of cases opened before the run are left out.
    """
    by_channel: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    by_district: Counter[str] = Counter()
    by_place: Counter[str] = Counter()
    by_unit: Counter[str] = Counter()
    officer_replies = 0
    opened: dict[str, DispatchDecision] = {}
    seen: set[str] = set()
    for d in decisions:
        if d.event_id in seen:
            continue
        seen.add(d.event_id)
        action = d.action.value
        if action == "acknowledgement":
            officer_replies += 1
            continue
        by_channel[d.reporter.channel.value] += 1
        if action in REPORT_ACTIONS:
            by_category[d.category.value] += 1
            by_district[d.location.value if d.location else "unknown"] += 1
            if d.locality:
                by_place[d.locality] += 1
            by_unit[d.responsible_unit or "none"] += 1
        if action == "new_case" and d.case_id:
            opened.setdefault(d.case_id, d)
    first_ack: dict[str, CaseEvent] = {}
    for e in case_events:
        if e.type.value != "acknowledged" or e.case_id not in opened:
            continue
        if e.case_id not in first_ack or e.at < first_ack[e.case_id].at:
            first_ack[e.case_id] = e
    cases: Counter[str] = Counter()
    waits: dict[str, list[float]] = defaultdict(list)
    for case_id, d in opened.items():
        ack = first_ack.get(case_id)
        priority = (ack.priority if ack and ack.priority else d.priority).value
        cases[priority] += 1
        if ack is not None:
            waits[priority].append(max(0.0, (ack.at - d.received_at).total_seconds()))
    return DayFigures(
        messages_by_channel=_ranked(by_channel),
        officer_replies=officer_replies,
        reports_by_category=_ranked(by_category),
        reports_by_district=_ranked(by_district),
        reports_by_place=count_places(by_place),
        reports_by_unit=_ranked(by_unit),
        time_to_acknowledge=[
            AckFigures(p, cases[p], len(w), statistics.median(w)) for p, w in sorted(waits.items())
        ],
    )


# --------------------------------------------------------------------------- run


@dataclass
class SimulationResult:
    sent: int
    accepted: int
    rejected: dict[int, int]
    triaged: int
    decisions: dict[str, int]
    cases: int
    alerts_sent: int
    citizen_replies: int
    escalations: int
    acknowledged: int
    figures: DayFigures = field(default_factory=DayFigures)


@dataclass
class Played:
    """A finished run: its figures, and what the observer saw (tests look at the details)."""

    result: SimulationResult
    observer: Observer
    player: Player


def progress_line(elapsed: float, observer: Observer, player: Player) -> str:
    """One line of counters (the quiet mode's sign of life)."""
    alerts = replies = 0
    for d in observer.deliveries:
        if d.status.value != "sent":
            continue
        if d.purpose.value.startswith("citizen_"):
            replies += 1
        else:
            alerts += 1
    events = Counter(e.type.value for e in observer.case_events)
    return (
        f"[{elapsed:6.1f}s] sent {player.sent}, accepted {player.accepted}, "
        f"triaged {len(observer.triaged)}, decided {len(observer.decisions)}, "
        f"alerts {alerts}, replies {replies}, "
        f"acknowledged {events['acknowledged']}, escalated {events['escalated']}"
    )


async def _report_progress(observer: Observer, player: Player, every_s: float) -> None:
    start = time.monotonic()
    while True:
        await asyncio.sleep(every_s)
        print(progress_line(time.monotonic() - start, observer, player), flush=True)


async def simulate(
    settings: CliSettings,
    scenario: Scenario,
    *,
    quiet: bool = False,
    settle_s: float = 20.0,
    progress_every_s: float = 2.0,
) -> SimulationResult:
    played = await play(
        settings, scenario, quiet=quiet, settle_s=settle_s, progress_every_s=progress_every_s
    )
    return played.result


async def play(
    settings: CliSettings,
    scenario: Scenario,
    *,
    quiet: bool = False,
    settle_s: float = 20.0,
    progress_every_s: float = 2.0,
) -> Played:
    """Play `scenario` and wait for it to settle. Quiet: no live view, but a line of counters
    every `progress_every_s` (a flood of thousands of items would otherwise show nothing for
    minutes); 0 turns that off too."""
    view = View(quiet=quiet)
    observer = Observer(settings, view)
    await observer.start()
    observer_task = asyncio.create_task(observer.run())
    player = Player(settings, view, observer)
    print(f"scenario '{scenario.name}': {scenario.description} ({len(scenario.steps)} steps)")
    progress_task = (
        asyncio.create_task(_report_progress(observer, player, progress_every_s))
        if quiet and progress_every_s > 0
        else None
    )
    start = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    try:
        for step in scenario.steps:
            delay = step.at - (time.monotonic() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            if step.act:
                tasks.append(asyncio.create_task(player.act(step)))
            else:
                tasks.append(asyncio.create_task(player.send(step)))
        await asyncio.gather(*tasks)
        await _settle(observer, player, settle_s)
    finally:
        if progress_task is not None:
            progress_task.cancel()
        for task in tasks:
            task.cancel()
        observer_task.cancel()
        await observer.stop()
        await player.close()
    if progress_task is not None:
        print(progress_line(time.monotonic() - start, observer, player), flush=True)
    actions = Counter(d.action.value for d in observer.decisions)
    result = SimulationResult(
        sent=player.sent,
        accepted=player.accepted,
        rejected=dict(player.rejected),
        triaged=len(observer.triaged),
        decisions=dict(actions),
        cases=len({d.case_id for d in observer.decisions if d.case_id}),
        alerts_sent=sum(
            1
            for d in observer.deliveries
            if not d.purpose.value.startswith("citizen_") and d.status.value == "sent"
        ),
        citizen_replies=sum(
            1
            for d in observer.deliveries
            if d.purpose.value.startswith("citizen_") and d.status.value == "sent"
        ),
        escalations=sum(1 for e in observer.case_events if e.type.value == "escalated"),
        acknowledged=sum(1 for e in observer.case_events if e.type.value == "acknowledged"),
        figures=day_figures(observer.decisions, observer.case_events),
    )
    return Played(result, observer, player)


async def _settle(observer: Observer, player: Player, settle_s: float) -> None:
    """Wait until every accepted message was triaged and decided (or `settle_s` passes)."""
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        if len(observer.decisions) >= player.accepted and len(observer.triaged) >= player.accepted:
            await asyncio.sleep(2.0)  # the last alerts and replies
            return
        await asyncio.sleep(0.5)


SUMMARY_LABEL_WIDTH = 29
SUMMARY_WIDTH = 100


def _breakdown(label: str, items: list[str]) -> list[str]:
    """`    label  a 3, b 2, ...` under the figure it breaks down, wrapped between items at
    `SUMMARY_WIDTH` with the continuation aligned on the figures (nothing for no items)."""
    head = f"    {label:<{SUMMARY_LABEL_WIDTH - 2}}"
    rows: list[list[str]] = []
    for i, item in enumerate(items):
        text = item + ("," if i < len(items) - 1 else "")
        if rows and len(head) + len(" ".join([*rows[-1], text])) <= SUMMARY_WIDTH:
            rows[-1].append(text)
        else:
            rows.append([text])
    return [(head if i == 0 else " " * len(head)) + " ".join(row) for i, row in enumerate(rows)]


def _counts(pairs: list[tuple[str, int]]) -> list[str]:
    return [f"{name} {n}" for name, n in pairs]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render_summary(result: SimulationResult) -> str:
    d = result.decisions
    f = result.figures
    greetings = d.get("greeting", 0)
    reports = d.get("new_case", 0) + d.get("merged", 0) + d.get("followup", 0)
    officers = ""
    if f.officer_replies:
        who = "officer's OK reply" if f.officer_replies == 1 else "officers' OK replies"
        officers = f", including {f.officer_replies} {who}"
    acks = [
        f"{a.priority} {_duration(a.median_s)} ({a.acknowledged} of {a.cases})"
        for a in f.time_to_acknowledge
    ]
    return "\n".join(
        [
            "",
            "The day in figures (as the Director reports it):",
            f"  messages and calls received  {result.accepted} (of {result.sent} sent{officers})",
            *_breakdown("by channel", _counts(f.messages_by_channel)),
            f"  reports                      {reports} "
            f"({d.get('new_case', 0)} new cases, {d.get('merged', 0)} merged into another "
            f"citizen's case, {d.get('followup', 0)} follow-ups)",
            *_breakdown("by category", _counts(f.reports_by_category)),
            *_breakdown("by district", _counts(f.reports_by_district)),
            *_breakdown("most reported places", _counts(f.reports_by_place[:SUMMARY_PLACES])),
            *_breakdown("by responsible unit", _counts(f.reports_by_unit)),
            f"  greetings                    {greetings}",
            f"  missed calls to return       {d.get('callback', 0)}",
            f"  alerts sent to officers      {result.alerts_sent}",
            f"  escalations                  {result.escalations}",
            f"  acknowledgements             {result.acknowledged}",
            *_breakdown("median time to acknowledge", acks),
            f"  replies to citizens          {result.citizen_replies}",
        ]
        + ([f"  rejected by ingest           {result.rejected}"] if result.rejected else [])
    )


def options_error(scenario_name: str, rate: float | None, duration: float | None) -> str | None:
    """Why these options cannot be played (None when they can).

    The flood is generated: `--rate` × `--duration` messages. A script's messages are
    written: either option rescales its clock (`paced`), and both together would ask for a
    number of messages it does not have.
    """
    if rate is not None and rate <= 0:
        return "--rate must be more than 0 messages per second"
    if duration is not None and duration <= 0:
        return "--duration must be more than 0 seconds"
    if scenario_name != "flood" and rate is not None and duration is not None:
        return (
            f"'{scenario_name}' is a script with its own messages: give --rate (messages per "
            "second) or --duration (seconds for the whole script), not both (the flood "
            "scenario generates --rate x --duration messages)"
        )
    return None


def run(
    settings: CliSettings,
    scenario_name: str,
    *,
    rate: float | None = None,
    duration: float | None = None,
    quiet: bool = False,
) -> int:
    problem = options_error(scenario_name, rate, duration)
    if problem is not None:
        print(f"hotline simulate: {problem}", file=sys.stderr)
        return 2
    # New citizens for every run: the local case file keeps the earlier runs' open cases.
    salt = random.randint(1, 999)
    if scenario_name == "flood":
        rate = rate or 10.0
        scenario = with_fresh_citizens(flood_scenario(rate, duration or 60.0), salt)
    else:
        scenario = paced(load_scenario(scenario_name), rate=rate, duration=duration, salt=salt)
    # A line per step is unreadable above a few per second: counters every 2 s instead.
    quiet = quiet or (rate or 0.0) > 5
    result = asyncio.run(simulate(settings, scenario, quiet=quiet, settle_s=60.0))
    print(render_summary(result))
    return 0 if result.accepted == result.sent else 1
