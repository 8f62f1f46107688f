"""Provider-approved templates: the parameters each message kind sends to WhatsApp and Zalo ZNS.

WhatsApp outside the 24-hour window, and ZNS (to a phone that never chatted with the OA), accept
only templates approved in advance by Meta or Zalo. Each has a fixed wording and a fixed set of
parameters: positional for WhatsApp (`{{1}}`, `{{2}}`, …, sent in order), named for ZNS (the
keys of `template_data`). The provider refuses a send whose template is unknown or whose
parameters differ (WhatsApp 132001 / 132000, ZNS -109 / -112).

This module fixes them in one place. `TEMPLATE_PARAMS` gives the ordered parameter names of
every message kind (the `templates.yaml` entry a notification is rendered from); the composer
fills exactly these (`template_params`), the channels send them in this order, and the settings
name the provider template of each kind (`NOTIFIER_WHATSAPP_TEMPLATES`,
`NOTIFIER_ZALO_ZNS_TEMPLATES`), checked by `check_templates` at start-up. Register each
provider template with the wording of the kind's `templates.yaml` text and these parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class MessageKind(StrEnum):
    """What a notification says (its `templates.yaml` entry and its provider template)."""

    ALERT = "alert"
    ESCALATION = "escalation"
    REMINDER = "reminder"
    DIRECTIVE = "directive"
    DIRECTIVE_REMINDER = "directive_reminder"
    INFORM = "inform"
    CALLBACK_TASK = "callback_task"
    CITIZEN_RECEIPT = "citizen_receipt"
    CITIZEN_COURTESY = "citizen_courtesy"
    CITIZEN_CLOSURE = "citizen_closure"


# Parameter sets. Kinds that share one may share a provider template (the settings allow it);
# each has its own by default, because the wording differs (an escalation must say so).
CASE_ALERT = ("case_id", "priority", "category", "location", "summary", "ack_url")
"""Alert and escalation: what happened, where, and the acknowledgement link."""
CASE_INFORM = ("case_id", "priority", "category", "location", "unit", "summary")
"""For information (no acknowledgement): which unit handles it."""
CALLBACK = ("case_id", "received_at", "reporter", "ack_url")
"""A missed call to return: when, from whom (masked unless the recipient may see it)."""
CASE_REMINDER = ("case_id", "category", "location", "acked_at")
"""An acknowledged case without an outcome yet."""
DIRECTIVE = ("case_id", "issuer", "directive", "deadline")
"""A directive, or the reminder that its report-back is overdue."""
CITIZEN_CASE = ("case_id",)
"""The citizen's receipt or closure notice: the case number only, never officers' wording."""
NO_PARAMS: tuple[str, ...] = ()
"""The courtesy reply: fixed wording."""

TEMPLATE_PARAMS: Mapping[MessageKind, tuple[str, ...]] = MappingProxyType(
    {
        MessageKind.ALERT: CASE_ALERT,
        MessageKind.ESCALATION: CASE_ALERT,
        MessageKind.REMINDER: CASE_REMINDER,
        MessageKind.DIRECTIVE: DIRECTIVE,
        MessageKind.DIRECTIVE_REMINDER: DIRECTIVE,
        MessageKind.INFORM: CASE_INFORM,
        MessageKind.CALLBACK_TASK: CALLBACK,
        MessageKind.CITIZEN_RECEIPT: CITIZEN_CASE,
        MessageKind.CITIZEN_COURTESY: NO_PARAMS,
        MessageKind.CITIZEN_CLOSURE: CITIZEN_CASE,
    }
)
"""Message kind → the ordered parameter names its provider template takes."""

CITIZEN_KINDS = frozenset(
    {MessageKind.CITIZEN_RECEIPT, MessageKind.CITIZEN_COURTESY, MessageKind.CITIZEN_CLOSURE}
)
EMPTY = "-"
"""Stands in for a value that is empty (no deadline, no unit): providers refuse an empty
parameter (WhatsApp 131008)."""

LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")]


class TemplateMismatch(ValueError):
    """A notification's parameters are not those its template takes (a bug, never sent)."""


class WhatsAppTemplate(BaseModel):
    """One template approved in WhatsApp Manager: its name and the languages it exists in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    languages: tuple[LanguageCode, ...] = Field(default=("vi",), min_length=1)

    def language_for(self, language: str) -> str:
        """The approved language to send a message written in `language` with: that one
        (`en` also matches `en_US`), else the first listed."""
        for code in self.languages:
            if code == language or code.startswith(f"{language}_"):
                return code
        return self.languages[0]


def default_whatsapp_templates() -> dict[MessageKind, WhatsAppTemplate]:
    """`hotline_<kind>` for every kind: in Vietnamese for officers, also English for citizens."""
    return {
        kind: WhatsAppTemplate(
            name=f"hotline_{kind.value}",
            languages=("vi", "en") if kind in CITIZEN_KINDS else ("vi",),
        )
        for kind in MessageKind
    }


def default_zns_templates() -> dict[MessageKind, str]:
    """Development placeholders (`dev-zns-<kind>`): Zalo assigns the real ids on approval."""
    return {kind: f"dev-zns-{kind.value.replace('_', '-')}" for kind in MessageKind}


T = TypeVar("T")


def check_templates(
    templates: Mapping[MessageKind, T], key: Callable[[T], Hashable], what: str
) -> None:
    """Refuse a mapping that leaves a kind without a template (any kind can go out as one), or
    that sends two kinds with different parameters through one template (one of them would
    always be refused)."""
    missing = [kind.value for kind in MessageKind if kind not in templates]
    if missing:
        raise ValueError(
            f"no {what} for {', '.join(missing)}: every message kind can go out as a template "
            "(give all of them)"
        )
    first_kind: dict[Hashable, MessageKind] = {}
    for kind, template in templates.items():
        other = first_kind.setdefault(key(template), kind)
        if TEMPLATE_PARAMS[other] != TEMPLATE_PARAMS[kind]:
            raise ValueError(
                f"{what} {key(template)!r} is given for {other.value} and {kind.value}, whose "
                f"parameters differ ({', '.join(TEMPLATE_PARAMS[other]) or 'none'} / "
                f"{', '.join(TEMPLATE_PARAMS[kind]) or 'none'}): give each its own template"
            )


def template_params(kind: MessageKind, values: Mapping[str, str]) -> dict[str, str]:
    """Exactly the parameters of `kind`'s template, in order, taken from `values` (which may
    hold more); an empty value becomes `EMPTY`."""
    names = TEMPLATE_PARAMS[kind]
    missing = [name for name in names if name not in values]
    if missing:
        raise TemplateMismatch(f"{kind.value}: no value for {', '.join(missing)}")
    return {name: values[name].strip() or EMPTY for name in names}


def ordered_params(kind: MessageKind, params: Mapping[str, str]) -> list[tuple[str, str]]:
    """A notification's parameters in its template's order; TemplateMismatch unless they are
    exactly the template's."""
    names = TEMPLATE_PARAMS[kind]
    if set(params) != set(names):
        raise TemplateMismatch(
            f"{kind.value} takes {', '.join(names) or 'no parameters'}, "
            f"got {', '.join(params) or 'none'}"
        )
    return [(name, params[name]) for name in names]
