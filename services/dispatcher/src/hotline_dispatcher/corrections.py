"""Triage corrections as training data for the classifier (pure).

A correction keeps what the classifier said and what a person says it should have been. The
export is the classifier's corpus format, one JSON object per line:
`{id, channel, text, category, actionable, priority, location, language}`. Phone numbers in the
text are masked (the model needs the words, not the numbers); the latest correction of a
message wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from hotline.contracts.labels import Category
from hotline.privacy import mask_text

TRIAGE_FIELDS = ("category", "actionable", "priority", "location")


def training_record(doc: dict[str, Any]) -> dict[str, Any]:
    after = doc["after"]
    return {
        "id": f"correction-{doc['message_id']}",
        "channel": doc.get("channel") or "other",
        "text": mask_text(str(doc.get("text") or "")),
        "category": after["category"],
        "actionable": bool(after.get("actionable", after["category"] != Category.GREETING)),
        "priority": after["priority"],
        "location": after.get("location"),
        "language": doc.get("language") or "vi",
    }


def latest_per_message(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One correction per message, the latest (docs come oldest first)."""
    latest: dict[str, dict[str, Any]] = {}
    for doc in docs:
        latest.pop(str(doc["message_id"]), None)
        latest[str(doc["message_id"])] = doc
    return list(latest.values())


def export_jsonl(docs: Iterable[dict[str, Any]]) -> bytes:
    """The corrections as the classifier's JSONL training format (texts with visible words)."""
    lines = [
        orjson.dumps(training_record(d))
        for d in latest_per_message(docs)
        if str(d.get("text") or "").strip()
    ]
    return b"".join(line + b"\n" for line in lines)


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The triage fields whose value differs: field → (before, after)."""
    return {
        f: (before.get(f), after.get(f)) for f in TRIAGE_FIELDS if before.get(f) != after.get(f)
    }
