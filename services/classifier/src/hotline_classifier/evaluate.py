"""Scores of predicted triage against labelled messages (pure Python, no scikit-learn).

The figures are the targets of the classifier: category accuracy and macro-F1, actionable
recall (an incident must never be dropped as a greeting), P1 recall and precision, priority,
location and language accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .labels import CATEGORIES


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _f1(tp: int, fp: int, fn: int) -> float:
    if tp == 0:
        return 0.0
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return 2 * precision * recall / (precision + recall)


def score(
    gold: Sequence[Mapping[str, Any]], predicted: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Metrics of ``predicted`` against ``gold`` (aligned lists of TRIAGE.md records).

    Macro-F1 averages the F1 of every category that occurs in the gold labels or in the
    predictions (a category predicted but never true counts as F1 = 0).
    """
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted must have the same length")
    n = len(gold)
    per_category: dict[str, dict[str, int]] = {}
    for g, p in zip(gold, predicted, strict=True):
        for label in {g["category"], p["category"]}:
            counts = per_category.setdefault(str(label), {"tp": 0, "fp": 0, "fn": 0, "n": 0})
            if g["category"] == p["category"] == label:
                counts["tp"] += 1
            elif p["category"] == label:
                counts["fp"] += 1
            else:
                counts["fn"] += 1
        per_category[str(g["category"])]["n"] += 1
    order: dict[str, int] = {c: i for i, c in enumerate(CATEGORIES)}
    f1 = {
        label: round(_f1(c["tp"], c["fp"], c["fn"]), 4)
        for label, c in sorted(per_category.items(), key=lambda kv: order.get(kv[0], 99))
    }
    support = {label: per_category[label]["n"] for label in f1}

    def accuracy(field: str) -> float | None:
        return _ratio(
            sum(1 for g, p in zip(gold, predicted, strict=True) if g.get(field) == p.get(field)), n
        )

    actionable = [p for g, p in zip(gold, predicted, strict=True) if g.get("actionable")]
    p1_gold = [p for g, p in zip(gold, predicted, strict=True) if g.get("priority") == "P1"]
    p1_pred = [g for g, p in zip(gold, predicted, strict=True) if p.get("priority") == "P1"]
    macro = sum(f1.values()) / len(f1) if f1 else None
    return {
        "n": n,
        "category_accuracy": accuracy("category"),
        "category_macro_f1": macro,
        "category_f1": f1,
        "category_support": support,
        "actionable_recall": _ratio(
            sum(1 for p in actionable if p.get("actionable")), len(actionable)
        ),
        "p1_recall": _ratio(sum(1 for p in p1_gold if p.get("priority") == "P1"), len(p1_gold)),
        "p1_precision": _ratio(sum(1 for g in p1_pred if g.get("priority") == "P1"), len(p1_pred)),
        "priority_accuracy": accuracy("priority"),
        "location_accuracy": accuracy("location"),
        "language_accuracy": accuracy("language"),
    }


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def format_report(metrics: Mapping[str, Any]) -> str:
    """Human-readable multi-line report of :func:`score` output."""
    lines = [
        f"messages            {metrics['n']}",
        f"category accuracy   {_fmt(metrics['category_accuracy'])}",
        f"category macro-F1   {_fmt(metrics['category_macro_f1'])}",
        f"actionable recall   {_fmt(metrics['actionable_recall'])}",
        f"P1 recall           {_fmt(metrics['p1_recall'])}",
        f"P1 precision        {_fmt(metrics['p1_precision'])}",
        f"priority accuracy   {_fmt(metrics['priority_accuracy'])}",
        f"location accuracy   {_fmt(metrics['location_accuracy'])}",
        f"language accuracy   {_fmt(metrics['language_accuracy'])}",
        "per-category F1 (support):",
    ]
    for label, value in metrics["category_f1"].items():
        lines.append(f"  {label:<16} {value:.3f} ({metrics['category_support'][label]})")
    return "\n".join(lines)
