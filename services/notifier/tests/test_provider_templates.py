"""Provider templates (WhatsApp outside the 24-hour window, Zalo ZNS to a phone).

Each message kind goes out as its own approved template with exactly that template's
parameters; the provider sandbox refuses anything else the way Meta and Zalo do; the settings
refuse a mapping that would make a provider refuse. The expected names and parameters are
written out here, not read from the code under test: changing them means new provider
approvals, and this file says so.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from hotline.clock import ManualClock
from hotline.contracts import example
from hotline.contracts.events import CaseEvent, Contact, DeliveryPurpose, Recipient, Reporter
from hotline.contracts.labels import Channel, Language
from hotline_notifier.channels import SendError, build_channels
from hotline_notifier.channels.base import Channel as OutboundChannel
from hotline_notifier.channels.base import OutboundMessage
from hotline_notifier.channels.whatsapp import template_text
from hotline_notifier.compose import Composer
from hotline_notifier.delivery import Notification
from hotline_notifier.http_client import ProviderHttp
from hotline_notifier.models import AlertState, AlertStatus
from hotline_notifier.provider_templates import (
    TEMPLATE_PARAMS,
    MessageKind,
    WhatsAppTemplate,
    default_whatsapp_templates,
    default_zns_templates,
)
from hotline_notifier.settings import DEFAULT_TEMPLATES, NotifierSettings
from hotline_notifier.templates import KINDS, Templates
from hotline_sandbox.server import SandboxHandle
from hotline_sandbox.settings import SandboxSettings, WhatsAppApproval

from .conftest import ALERT_PARAMS, NotifierFactory, decision, sandbox_fields

NOW = datetime(2024, 1, 24, 2, 0, tzinfo=UTC)
CASE_ID = "HUE-20240124-0042"
OFFICER_PHONE = "+84905111222"
CITIZEN_PHONE = "+84912345678"

CASE_ALERT = ("case_id", "priority", "category", "location", "summary", "ack_url")
DIRECTIVE = ("case_id", "issuer", "directive", "deadline")
# kind → (WhatsApp template, ZNS template id, its parameters in order)
EXPECTED: dict[MessageKind, tuple[str, str, tuple[str, ...]]] = {
    MessageKind.ALERT: ("hotline_alert", "dev-zns-alert", CASE_ALERT),
    MessageKind.ESCALATION: ("hotline_escalation", "dev-zns-escalation", CASE_ALERT),
    MessageKind.REMINDER: (
        "hotline_reminder",
        "dev-zns-reminder",
        ("case_id", "category", "location", "acked_at"),
    ),
    MessageKind.DIRECTIVE: ("hotline_directive", "dev-zns-directive", DIRECTIVE),
    MessageKind.DIRECTIVE_REMINDER: (
        "hotline_directive_reminder",
        "dev-zns-directive-reminder",
        DIRECTIVE,
    ),
    MessageKind.INFORM: (
        "hotline_inform",
        "dev-zns-inform",
        ("case_id", "priority", "category", "location", "unit", "summary"),
    ),
    MessageKind.CALLBACK_TASK: (
        "hotline_callback_task",
        "dev-zns-callback-task",
        ("case_id", "received_at", "reporter", "ack_url"),
    ),
    MessageKind.CITIZEN_RECEIPT: (
        "hotline_citizen_receipt",
        "dev-zns-citizen-receipt",
        ("case_id",),
    ),
    MessageKind.CITIZEN_COURTESY: ("hotline_citizen_courtesy", "dev-zns-citizen-courtesy", ()),
    MessageKind.CITIZEN_CLOSURE: (
        "hotline_citizen_closure",
        "dev-zns-citizen-closure",
        ("case_id",),
    ),
}
LEVEL_KINDS = {
    MessageKind.ALERT: (DeliveryPurpose.ALERT, 0),
    MessageKind.ESCALATION: (DeliveryPurpose.ESCALATION, 1),
    MessageKind.REMINDER: (DeliveryPurpose.REMINDER, 0),
    MessageKind.INFORM: (DeliveryPurpose.INFORM, 0),
    MessageKind.CALLBACK_TASK: (DeliveryPurpose.CALLBACK_TASK, 0),
}
CITIZEN_KINDS = {
    MessageKind.CITIZEN_RECEIPT: DeliveryPurpose.CITIZEN_RECEIPT,
    MessageKind.CITIZEN_COURTESY: DeliveryPurpose.CITIZEN_COURTESY,
    MessageKind.CITIZEN_CLOSURE: DeliveryPurpose.CITIZEN_CLOSURE,
}


def officer(*contacts: Contact) -> Recipient:
    """The example decision's level-0 officer, reachable only on `contacts`."""
    first = decision().escalation[0].recipients[0]
    return first.model_copy(update={"contacts": list(contacts)})


def alert_state() -> AlertState:
    d = decision()
    return AlertState.model_validate(
        {
            "case_id": d.case_id,
            "source_id": d.decision_id,
            "priority": d.priority,
            "category": d.category,
            "location": d.location,
            "locality": d.locality,
            "unit": "Công an thành phố Huế",
            "summary": "Có người\nđánh nhau",
            "reporter": d.reporter,
            "received_at": d.received_at,
            "chain": d.escalation,
            "status": AlertStatus.ACKNOWLEDGED,
            "level": 0,
            "next_due_at": NOW,
            "created_at": NOW - timedelta(minutes=2),
            "acked_at": NOW - timedelta(minutes=1),
        }
    )


def notification(kind: MessageKind, language: Language = Language.VI) -> Notification:
    """A notification of `kind` composed the way the flows compose it, for a phone contact."""
    composer = Composer(Templates.load(DEFAULT_TEMPLATES), "http://notifier.test")
    phone = Contact(channel="whatsapp", address=OFFICER_PHONE)
    if kind in LEVEL_KINDS:
        purpose, level = LEVEL_KINDS[kind]
        token = None if purpose == DeliveryPurpose.INFORM else "tok"
        state = alert_state()
        return composer.for_level(
            state, level, officer(phone), token, purpose=purpose, step=f"L{level}"
        )
    if kind in (MessageKind.DIRECTIVE, MessageKind.DIRECTIVE_REMINDER):
        return composer.for_directive(
            source_id="evt-directive",
            case_id=CASE_ID,
            recipient=officer(phone),
            text="Khẩn trương xác minh,\nbáo cáo kết quả",
            deadline=None,  # none given: the parameter is not left empty
            reminder=kind == MessageKind.DIRECTIVE_REMINDER,
        )
    return composer.for_citizen(
        source_id="evt-citizen",
        purpose=CITIZEN_KINDS[kind],
        reporter=Reporter(channel=Channel.WHATSAPP, address=CITIZEN_PHONE, language=language),
        case_id=CASE_ID,
        now=NOW,
        received_at=None,  # outside the 24-hour window: a template
    )


def channel(sb: SandboxHandle, http: ProviderHttp, name: str, **overrides: Any) -> OutboundChannel:
    settings = NotifierSettings(**{**sandbox_fields(sb), **overrides})
    return build_channels(settings, http).for_contact(name)[0]


def sent_params(body: dict[str, Any]) -> list[str]:
    template = body["template"]
    return [p["text"] for c in template.get("components", []) for p in c["parameters"]]


# ------------------------------------------------------------------ composing (pure)


def test_every_kind_has_a_parameter_set_and_a_default_template_of_each_provider() -> None:
    assert set(TEMPLATE_PARAMS) == set(MessageKind) == set(EXPECTED)
    assert set(KINDS) == {k.value for k in MessageKind}  # templates.yaml renders the same kinds
    assert set(default_whatsapp_templates()) == set(default_zns_templates()) == set(MessageKind)


@pytest.mark.parametrize("kind", list(MessageKind))
def test_each_kind_is_composed_with_exactly_its_templates_parameters(kind: MessageKind) -> None:
    n = notification(kind)
    assert n.kind == kind
    assert list(n.template_params) == list(EXPECTED[kind][2])
    assert all(value.strip() for value in n.template_params.values())
    if kind in CITIZEN_KINDS:
        # A citizen's template carries the case number, never the officers' or any free text.
        assert set(n.template_params.values()) <= {CASE_ID}


@pytest.mark.parametrize(
    ("wrote_ago", "as_text"),
    [(timedelta(hours=23), True), (timedelta(hours=25), False), (None, False)],
)
def test_a_reply_about_a_case_is_text_only_within_24_hours_of_the_citizens_last_message(
    wrote_ago: timedelta | None, as_text: bool
) -> None:
    composer = Composer(Templates.load(DEFAULT_TEMPLATES), "http://notifier.test")
    reporter = Reporter(
        channel=Channel.WHATSAPP,
        address=CITIZEN_PHONE,
        last_message_at=NOW - wrote_ago if wrote_ago else None,
    )
    n = composer.for_citizen(
        source_id="evt-closure",
        purpose=DeliveryPurpose.CITIZEN_CLOSURE,
        reporter=reporter,
        case_id=CASE_ID,
        now=NOW,
        received_at=None,
    )
    assert n.within_session is as_text
    assert n.received_at is None  # no report answered: not an end-to-end latency sample


def test_officer_parameters_are_the_alerts_facts() -> None:
    alert = notification(MessageKind.ALERT).template_params
    assert alert["case_id"] == CASE_ID and alert["priority"] == "KHẨN CẤP"
    assert alert["ack_url"] == "http://notifier.test/ack/tok"
    # Where exactly, then the district: the place the report names comes first.
    assert alert["location"] == "chợ Đông Ba, thành phố Huế"
    inform = notification(MessageKind.INFORM).template_params
    assert inform["unit"] == "Công an thành phố Huế"  # no ack link for those only informed
    directive = notification(MessageKind.DIRECTIVE).template_params
    assert directive["directive"].startswith("Khẩn trương xác minh")
    assert directive["deadline"] == "-"  # no deadline: a stand-in, not an empty parameter


# ------------------------------------------------------------------ against the provider sandbox


@pytest.mark.parametrize("kind", list(MessageKind))
async def test_each_kind_goes_out_as_its_own_template_with_its_parameters(
    sandbox: SandboxHandle, http: ProviderHttp, kind: MessageKind
) -> None:
    n = notification(kind)
    message = n.message("d" * 32)
    await channel(sandbox, http, "whatsapp").send(OFFICER_PHONE, message)
    await channel(sandbox, http, "zalo").send(OFFICER_PHONE, message)  # a phone: ZNS
    name, zns_id, params = EXPECTED[kind]
    [wa] = sandbox.sandbox.store.messages(provider="whatsapp")
    assert wa.kind == "template" and wa.body["template"]["name"] == name
    assert wa.body["template"]["language"] == {"code": "vi"}
    assert sent_params(wa.body) == [template_text(n.template_params[p]) for p in params]
    [zns] = sandbox.sandbox.store.messages(provider="zns")
    assert zns.body["template_id"] == zns_id
    assert list(zns.body["template_data"]) == list(params)


async def test_an_english_citizen_gets_the_english_template_where_it_is_approved(
    sandbox: SandboxHandle, http: ProviderHttp
) -> None:
    receipt = notification(MessageKind.CITIZEN_RECEIPT, Language.EN).message("d" * 32)
    wa = channel(sandbox, http, "whatsapp")
    await wa.send(CITIZEN_PHONE, receipt)
    # Officers' templates exist in Vietnamese only: an English message still uses that one.
    alert = notification(MessageKind.ALERT).message("e" * 32)
    await wa.send(OFFICER_PHONE, replace(alert, language="en"))
    first, second = sandbox.sandbox.store.messages(provider="whatsapp")
    assert first.body["template"]["language"] == {"code": "en"}
    assert second.body["template"]["language"] == {"code": "vi"}


async def test_a_template_the_provider_never_approved_is_refused(
    sandbox: SandboxHandle, http: ProviderHttp
) -> None:
    message = notification(MessageKind.ALERT).message("d" * 32)
    renamed = {**default_whatsapp_templates(), MessageKind.ALERT: WhatsAppTemplate(name="x_alert")}
    with pytest.raises(SendError) as wa:
        await channel(sandbox, http, "whatsapp", whatsapp_templates=renamed).send(
            OFFICER_PHONE, message
        )
    assert not wa.value.transient and wa.value.status == 132001
    other_id = {**default_zns_templates(), MessageKind.ALERT: "250011"}
    with pytest.raises(SendError, match="error -109") as zns:
        await channel(sandbox, http, "zalo", zalo_zns_templates=other_id).send(
            OFFICER_PHONE, message
        )
    assert not zns.value.transient
    assert sandbox.sandbox.store.messages() == []


async def test_parameters_other_than_the_approved_ones_are_refused(
    sandbox: SandboxHandle, http: ProviderHttp
) -> None:
    message = notification(MessageKind.ALERT).message("d" * 32)
    # The templates as approved take other parameters than the notifier sends.
    sandbox.sandbox.whatsapp_templates["hotline_alert"] = WhatsAppApproval(
        languages=["vi"], params=5
    )
    sandbox.sandbox.zns_templates["dev-zns-alert"] = ["case_id", "summary"]
    with pytest.raises(SendError) as wa:
        await channel(sandbox, http, "whatsapp").send(OFFICER_PHONE, message)
    assert not wa.value.transient and wa.value.status == 132000
    with pytest.raises(SendError, match="error -112") as zns:
        await channel(sandbox, http, "zalo").send(OFFICER_PHONE, message)
    assert not zns.value.transient
    assert [a.outcome for a in sandbox.sandbox.store.attempts()] == [
        "template parameter count",
        "bad template data",
    ]


async def test_a_message_whose_parameters_are_not_its_kinds_is_never_sent(
    sandbox: SandboxHandle, http: ProviderHttp
) -> None:
    # A directive carrying an alert's parameters (a composing bug): refused before the provider.
    wrong = OutboundMessage(
        subject="Chỉ đạo",
        text="Chỉ đạo",
        delivery_id="d" * 32,
        tracking_id=CASE_ID,
        purpose="directive",
        kind=MessageKind.DIRECTIVE,
        template_params=ALERT_PARAMS,
    )
    for name in ("whatsapp", "zalo"):
        with pytest.raises(SendError, match="template parameters") as err:
            await channel(sandbox, http, name).send(OFFICER_PHONE, wrong)
        assert not err.value.transient  # the next channel is tried at once
    assert sandbox.sandbox.store.attempts() == []


@pytest.mark.integration
async def test_overdue_directives_and_closures_use_their_own_templates(
    make_notifier: NotifierFactory, sandbox: SandboxHandle, clock: ManualClock
) -> None:
    """Through the handlers: an overdue report-back is a REMINDER purpose, like a case
    reminder, but must go out as the directive reminder; a closure notice outside the 24-hour
    window as the citizen closure template, never an officer's."""
    n = await make_notifier()
    commander = {
        **example("DispatchDecision")["escalation"][1]["recipients"][0],
        "contacts": [{"channel": "whatsapp", "address": OFFICER_PHONE}],
    }
    event = example("CaseEvent")
    event.update(source="dispatcher")
    due = CaseEvent.model_validate(
        {
            **event,
            "event_id": "evt-due",
            "type": "reminder_due",
            "text": "Khẩn trương xác minh",
            "deadline": "2024-01-24T10:00:00Z",
            "recipients": [commander],
            "data": {"directive_id": f"{CASE_ID}-CD1", "issued_by": "director"},
        }
    )
    resolved = CaseEvent.model_validate(
        {
            **event,
            "event_id": "evt-resolved",
            "type": "resolved",
            "data": {},
            "reporters": [{"channel": "whatsapp", "address": CITIZEN_PHONE, "language": "vi"}],
        }
    )
    # Another citizen wrote on WhatsApp an hour ago: inside the window, the closure is text.
    recent = CaseEvent.model_validate(
        {
            **event,
            "event_id": "evt-resolved-recent",
            "case_id": "HUE-20240124-0002",
            "type": "resolved",
            "data": {},
            "reporters": [
                {
                    "channel": "whatsapp",
                    "address": "+84905000111",
                    "language": "vi",
                    "last_message_at": (clock.now() - timedelta(hours=1)).isoformat(),
                }
            ],
        }
    )
    await n.handlers.handle_case_event(due)
    await n.handlers.handle_case_event(resolved)
    await n.handlers.handle_case_event(recent)
    reminder, closure, in_window = sandbox.sandbox.store.messages(provider="whatsapp")
    assert in_window.kind == "text" and "HUE-20240124-0002" in in_window.body["text"]["body"]
    assert reminder.body["template"]["name"] == "hotline_directive_reminder"
    assert sent_params(reminder.body) == [
        CASE_ID,
        "Giám đốc",
        "Khẩn trương xác minh",
        "17:00 24/01/2024",
    ]
    assert closure.body["template"]["name"] == "hotline_citizen_closure"
    assert sent_params(closure.body) == [CASE_ID]


def test_the_sandbox_approves_what_the_notifier_sends_by_default() -> None:
    """The sandbox writes the default approvals out (it does not import the notifier)."""
    notifier, provider = NotifierSettings(), SandboxSettings()
    assert {
        t.name: WhatsAppApproval(languages=list(t.languages), params=len(TEMPLATE_PARAMS[kind]))
        for kind, t in notifier.whatsapp_templates.items()
    } == provider.whatsapp_approved_templates
    assert {
        template_id: list(TEMPLATE_PARAMS[kind])
        for kind, template_id in notifier.zalo_zns_templates.items()
    } == provider.zns_approved_templates


# ------------------------------------------------------------------ settings (start-up checks)


def test_every_kind_needs_a_template_of_each_provider() -> None:
    whatsapp = default_whatsapp_templates()
    del whatsapp[MessageKind.DIRECTIVE_REMINDER]
    with pytest.raises(ValidationError, match="no WhatsApp template for directive_reminder"):
        NotifierSettings(whatsapp_templates=whatsapp)
    zns = default_zns_templates()
    del zns[MessageKind.CITIZEN_CLOSURE]
    with pytest.raises(ValidationError, match="no ZNS template for citizen_closure"):
        NotifierSettings(zalo_zns_templates=zns)
    with pytest.raises(ValidationError):  # not a message kind
        NotifierSettings(zalo_zns_templates={**default_zns_templates(), "alarm": "1"})


def test_one_template_serves_several_kinds_only_if_their_parameters_agree() -> None:
    shared = WhatsAppTemplate(name="hotline_alert")
    ok = NotifierSettings(
        whatsapp_templates={**default_whatsapp_templates(), MessageKind.ESCALATION: shared}
    )
    assert ok.whatsapp_templates[MessageKind.ESCALATION].name == "hotline_alert"
    with pytest.raises(ValidationError, match="'hotline_alert' is given for alert and directive"):
        NotifierSettings(
            whatsapp_templates={**default_whatsapp_templates(), MessageKind.DIRECTIVE: shared}
        )
    with pytest.raises(ValidationError, match="parameters differ"):
        NotifierSettings(
            zalo_zns_templates={
                **default_zns_templates(),
                MessageKind.CITIZEN_RECEIPT: "dev-zns-alert",
            }
        )


def test_templates_are_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    zns = {kind.value: str(250000 + i) for i, kind in enumerate(MessageKind)}
    whatsapp = {
        kind.value: {"name": f"ca_hue_{kind.value}", "languages": ["vi", "en_US"]}
        for kind in MessageKind
    }
    monkeypatch.setenv("NOTIFIER_ZALO_ZNS_TEMPLATES", json.dumps(zns))
    monkeypatch.setenv("NOTIFIER_WHATSAPP_TEMPLATES", json.dumps(whatsapp))
    s = NotifierSettings()
    assert s.zalo_zns_templates[MessageKind.DIRECTIVE] == "250003"
    closure = s.whatsapp_templates[MessageKind.CITIZEN_CLOSURE]
    assert closure.name == "ca_hue_citizen_closure"
    assert closure.language_for("en") == "en_US" and closure.language_for("fr") == "vi"
    with pytest.raises(ValidationError):  # WhatsApp template names are lower case
        WhatsAppTemplate(name="Hotline Alert")


def test_the_total_deadline_must_leave_time_to_connect() -> None:
    with pytest.raises(ValidationError, match="http_total_timeout_s"):
        NotifierSettings(http_connect_timeout_s=3, http_total_timeout_s=3)


def test_placeholder_zns_ids_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """`dev-zns-*` are ids no Zalo account approved: production refuses to start with them."""
    monkeypatch.setenv("HOTLINE_ENV", "production")
    secrets = {
        name: SecretStr(f"real-{name}")
        for name, field in NotifierSettings.model_fields.items()
        if field.annotation is SecretStr
    }
    with pytest.raises(ValidationError, match="placeholder ZNS template id"):
        NotifierSettings(**secrets)
    approved = {kind: str(250000 + i) for i, kind in enumerate(MessageKind)}
    assert NotifierSettings(**secrets, zalo_zns_templates=approved).zalo_zns_templates == approved
