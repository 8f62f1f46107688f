"""``hotline-triage``: triage JSON Lines, or score a labelled file.

Usage::

    hotline-triage [--model DIR] [--gazetteer FILE] [--batch-size N] [--explain]
        < in.jsonl > out.jsonl
    hotline-triage eval FILE.jsonl [--json] [--model DIR] [--gazetteer FILE]

Stream mode reads one JSON object per line with ``id``, ``text`` and optionally ``channel``
(also ``kind`` and ``received_at``, as the pipeline has them) and writes one line per input, in
input order, with ``id`` and the fields of TRIAGE.md: ``category``, ``actionable``,
``priority``, ``location``, ``language``, ``confidence`` (``--explain`` adds ``reasons`` and
``model_version``). A missing or null ``text`` is empty text; a missing ``channel`` or ``kind``
is an ordinary message, so empty text is a greeting unless the channel or kind says it is a
call (TRIAGE.md). A bad line never stops the stream: it gets an ``error`` line (with its
``id`` when one could be read) and a message on stderr. Blank lines are skipped.

``eval`` reads a labelled file in the same format as ../shared/triage-sample.jsonl and prints
category accuracy, macro-F1 and per-category F1, actionable recall, P1 recall and precision,
and priority, location and language accuracy.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TextIO

from .engine import TriageEngine, TriageResult
from .evaluate import format_report, score
from .model import ModelError

OUTPUT_FIELDS: Final = ("category", "actionable", "priority", "location", "language", "confidence")
DEFAULT_BATCH: Final = 256


class BadLine(ValueError):
    """An input line that cannot be triaged; ``item_id`` is set when the line had one."""

    def __init__(self, message: str, item_id: object = None) -> None:
        super().__init__(message)
        self.item_id = item_id


@dataclass(frozen=True, slots=True)
class Item:
    """One parsed input line."""

    number: int
    item_id: object
    text: str | None
    channel: str | None
    kind: str | None
    received_at: datetime | None
    record: dict[str, Any]


def _optional_str(record: dict[str, Any], key: str, item_id: object) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise BadLine(f"'{key}' must be a string", item_id)


def parse_line(number: int, line: str) -> Item:
    """Parse and validate one input line (raises :class:`BadLine`)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(record, dict):
        raise BadLine(f"expected a JSON object, got {type(record).__name__}")
    item_id = record.get("id")
    # No text at all is empty text (a greeting, or a call to return on a call channel).
    text = record.get("text")
    if text is not None and not isinstance(text, str):
        raise BadLine("'text' must be a string or null", item_id)
    channel = _optional_str(record, "channel", item_id)
    kind = _optional_str(record, "kind", item_id)
    raw_time = _optional_str(record, "received_at", item_id)
    received_at = None
    if raw_time is not None:
        try:
            received_at = datetime.fromisoformat(raw_time)
        except ValueError as exc:
            raise BadLine("'received_at' must be an ISO 8601 time", item_id) from exc
    return Item(number, item_id, text, channel, kind, received_at, record)


def result_line(item_id: object, result: TriageResult, explain: bool) -> dict[str, Any]:
    """Output object for one triaged item."""
    full = result.to_dict()
    out: dict[str, Any] = {"id": item_id}
    out.update({k: full[k] for k in OUTPUT_FIELDS})
    if explain:
        out["reasons"] = full["reasons"]
        out["model_version"] = full["model_version"]
    return out


def _triage_items(engine: TriageEngine, items: Sequence[Item]) -> list[TriageResult | Exception]:
    """Triage a batch; if the batch fails, item by item so one bad item cannot sink others."""
    try:
        return list(
            engine.triage_many(
                [i.text for i in items],
                [i.channel for i in items],
                [i.kind for i in items],
                [i.received_at for i in items],
            )
        )
    except Exception:  # isolate the failing item below
        results: list[TriageResult | Exception] = []
        for item in items:
            try:
                results.append(engine.triage(item.text, item.channel, item.kind, item.received_at))
            except Exception as exc:  # reported as an error line, never a crash
                results.append(exc)
        return results


def _lines(stream: TextIO) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, 1):
        if line.strip():
            yield number, line


def run_stream(
    engine: TriageEngine,
    lines: Iterable[tuple[int, str]],
    out: TextIO,
    err: TextIO,
    batch_size: int = DEFAULT_BATCH,
    explain: bool = False,
) -> int:
    """Triage numbered input lines to ``out``; returns how many lines were errors."""
    errors = 0
    pending: list[Item | BadLine] = []

    def flush() -> None:
        nonlocal errors
        items = [p for p in pending if isinstance(p, Item)]
        results = iter(_triage_items(engine, items)) if items else iter(())
        for entry in pending:
            if isinstance(entry, BadLine):
                errors += 1
                out.write(_dump({"id": entry.item_id, "error": str(entry)}))
                continue
            result = next(results)
            if isinstance(result, Exception):
                errors += 1
                message = f"triage failed: {type(result).__name__}: {result}"
                err.write(f"line {entry.number}: {message}\n")
                out.write(_dump({"id": entry.item_id, "error": message}))
            else:
                out.write(_dump(result_line(entry.item_id, result, explain)))
        pending.clear()
        out.flush()

    for number, line in lines:
        try:
            pending.append(parse_line(number, line))
        except BadLine as bad:
            err.write(f"line {number}: {bad}\n")
            pending.append(bad)
        if len(pending) >= batch_size:
            flush()
    flush()
    return errors


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False) + "\n"


def run_eval(engine: TriageEngine, path: Path, as_json: bool, out: TextIO, err: TextIO) -> int:
    """Score ``engine`` on a labelled JSONL file."""
    gold: list[dict[str, Any]] = []
    items: list[Item] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in _lines(handle):
            try:
                item = parse_line(number, line)
            except BadLine as bad:
                err.write(f"{path}:{number}: skipped: {bad}\n")
                continue
            if "category" not in item.record:
                err.write(f"{path}:{number}: skipped: no 'category' label\n")
                continue
            gold.append(item.record)
            items.append(item)
    if not items:
        err.write(f"{path}: no labelled lines\n")
        return 2
    results = _triage_items(engine, items)
    predicted = [
        r.to_dict() if isinstance(r, TriageResult) else {"category": None, "actionable": None}
        for r in results
    ]
    metrics = score(gold, predicted)
    metrics["model_version"] = engine.model_version
    if as_json:
        out.write(json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(f"model {engine.model_version} on {path}\n")
        out.write(format_report(metrics) + "\n")
    return 0


def _stream_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline-triage",
        description="Triage JSON Lines from stdin to stdout (see also: hotline-triage eval).",
    )
    parser.add_argument("--model", type=Path, help="model directory (default: packaged)")
    parser.add_argument("--gazetteer", type=Path, help="gazetteer YAML (default: packaged)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="items per batch")
    parser.add_argument("--explain", action="store_true", help="add reasons and model_version")
    return parser


def _eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline-triage eval", description="Score the classifier on a labelled JSONL file."
    )
    parser.add_argument("file", type=Path, help="labelled JSONL (triage-sample.jsonl format)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--model", type=Path, help="model directory (default: packaged)")
    parser.add_argument("--gazetteer", type=Path, help="gazetteer YAML (default: packaged)")
    return parser


def _utf8(stream: TextIO) -> TextIO:
    # Pipes may default to a locale encoding; hotline text is Vietnamese UTF-8 either way.
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(encoding="utf-8", errors="replace")
    return stream


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hotline-triage``."""
    args = list(sys.argv[1:] if argv is None else argv)
    out = _utf8(sys.stdout)
    err = _utf8(sys.stderr)
    evaluating = bool(args) and args[0] == "eval"
    options = (
        _eval_parser().parse_args(args[1:]) if evaluating else _stream_parser().parse_args(args)
    )
    try:
        engine = TriageEngine.load(options.model, options.gazetteer)
    except (ModelError, OSError, ValueError) as exc:
        err.write(f"hotline-triage: cannot load the classifier: {exc}\n")
        return 2
    if evaluating:
        if not options.file.exists():
            err.write(f"hotline-triage eval: {options.file}: no such file\n")
            return 2
        return run_eval(engine, options.file, options.json, out, err)
    if options.batch_size < 1:
        err.write("hotline-triage: --batch-size must be at least 1\n")
        return 2
    run_stream(engine, _lines(_utf8(sys.stdin)), out, err, options.batch_size, options.explain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
