"""Message templates from YAML configuration (vi/en), checked completely at start-up."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .provider_templates import MessageKind

KINDS = tuple(kind.value for kind in MessageKind)
LANGUAGES = ("vi", "en")
FIELDS = frozenset(
    {
        "case_id",
        "priority",
        "priority_label",
        "category",
        "location",
        "summary",
        "reporter",
        "ack_url",
        "level",
        "role",
        "waited",
        "unit",
        "directive",
        "issuer",
        "deadline",
        "acked_at",
        "received_at",
        "org",
    }
)


class TemplateError(ValueError):
    """The templates file is incomplete or uses an unknown placeholder."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str


def language_of(value: str | None) -> str:
    """Templates exist in vi and en; Vietnamese unless the citizen wrote in English."""
    return "en" if value == "en" else "vi"


class Templates:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self._check()

    @classmethod
    def load(cls, path: Path) -> Templates:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        if not isinstance(data, dict):
            raise TemplateError(f"{path}: expected a mapping at the top level")
        return cls(data)

    def _check(self) -> None:
        messages = self.data.get("messages") or {}
        for kind in KINDS:
            for lang in LANGUAGES:
                entry = (messages.get(kind) or {}).get(lang)
                if not isinstance(entry, dict) or not entry.get("text") or not entry.get("subject"):
                    raise TemplateError(f"template {kind}/{lang} needs a subject and a text")
                for part in ("subject", "text"):
                    for _, name, _, _ in string.Formatter().parse(str(entry[part])):
                        if name is not None and name not in FIELDS:
                            raise TemplateError(f"template {kind}/{lang} uses unknown {{{name}}}")
        for lang in LANGUAGES:
            if not (self.data.get("org") or {}).get(lang):
                raise TemplateError(f"org/{lang} is missing")

    def label(self, group: str, key: str | None, language: str) -> str:
        """A localised label (category, location, priority, role); the key itself if absent."""
        table = ((self.data.get("labels") or {}).get(group) or {}).get(language) or {}
        if key is None:
            return str(table.get("unknown", ""))
        return str(table.get(key, key))

    def org(self, language: str) -> str:
        return str(self.data["org"][language])

    def render(self, kind: str, language: str, fields: Mapping[str, object]) -> Rendered:
        lang = language_of(language)
        entry = self.data["messages"][kind][lang]
        values = _Defaults({"org": self.org(lang), **{k: str(v) for k, v in fields.items()}})
        subject = string.Formatter().vformat(str(entry["subject"]), (), values)
        text = string.Formatter().vformat(str(entry["text"]), (), values)
        return Rendered(subject=" ".join(subject.split()), text=_tidy(text))


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _tidy(text: str) -> str:
    """Drop lines a missing field left empty (e.g. no reporter contact to show)."""
    lines = [line.rstrip() for line in text.splitlines()]
    kept = [line for line in lines if line and not line.endswith(":")]
    return "\n".join(line for line in kept if line.strip())
