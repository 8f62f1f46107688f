"""Structured JSON logging, one event per line, with personal data masked.

Usage: `log = get_logger(__name__)`, then `log.info("published", extra={"event_id": ...})`.
Every `extra` field and the message itself pass through `hotline.privacy` before output.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from hotline.privacy import mask_text, mask_value

_RESERVED = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": mask_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = mask_value(key, value)
        if record.exc_info:
            entry["exc"] = mask_text(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines for a developer terminal; still masked."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={mask_value(k, v)}"
            for k, v in record.__dict__.items()
            if k not in _RESERVED and not k.startswith("_")
        )
        line = f"{record.levelname[0]} {record.name}: {mask_text(record.getMessage())}"
        if extras:
            line += f" [{extras}]"
        if record.exc_info:
            line += "\n" + mask_text(self.formatException(record.exc_info))
        return line


def configure_logging(service: str, level: str = "INFO", json_lines: bool = True) -> None:
    """Install the masking formatter on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries: keep their warnings, drop their per-request info lines.
    for noisy in ("aiokafka", "kafka", "pymongo", "uvicorn.access", "httpx", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
