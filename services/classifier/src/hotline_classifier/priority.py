"""Priority: P1..P4 from the category, the urgency and time signals, and the priority model.

TRIAGE.md fixes part of the answer; those parts are rules here, the rest is the model's:

* P4 only and always for greetings;
* P1 when the text names a danger to life or body now (weapon in use, blood, unconsciousness,
  someone trapped or drowning, fire, kidnapping, a suicide attempt, an animal attacking
  people), in a category where that danger is the incident itself, with nothing saying it is
  over, planned, or only a risk; light injuries ("trầy tay") rule out only the dangers they
  describe (blood, a blow, a weapon), not a fire or someone unconscious;
* P2 at least for a person still missing, and for a dangerous animal that just hurt people;
* otherwise the priority model decides, choosing P1 whenever it is likely enough.

``reasons`` quote the signals behind the decision ("urgency: 'đang đâm'", "time: 'tối qua'
→ past", "time: 'cách đây 3 tiếng' → 3 h ago: past").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .cues import Cues
from .labels import Category, Priority
from .signals import CALM_SIGNALS, NOW_SIGNALS, PAST_SIGNALS, URGENT_SIGNALS

# P1 is chosen when its probability reaches this, even if not the largest: a missed P1 costs
# more than a P2 answered quickly (chosen on the held-out split).
P1_MIN_PROBABILITY: Final = 0.35

# The P1 rule: signals of danger to life or body, and what says the danger is not now.
DANGER_SIGNALS: Final = frozenset(
    {
        "cry_for_help",
        "stab_or_crash",
        "weapon",
        "attack",
        "blood",
        "unconscious",
        "trapped",
        "drowning",
        "fire",
        "kidnap",
        "severe_injury",
        "stranded",
        "heavy_bleeding",
        "self_harm",
        "animal_attack",
    }
)
DANGER_CATEGORIES: Final = frozenset({"traffic", "violence", "fire_rescue", "other"})
# An overdose is a drugs report whose danger is to the body of the user.
BODY_SIGNALS: Final = frozenset(
    {"unconscious", "severe_injury", "blood", "heavy_bleeding", "self_harm"}
)
# What says the danger is not now: a time said near it ("tối qua", "tối nay sẽ"; within
# TIME_DISTANCE phrases, so that "cảm ơn anh hôm trước…" in an opening greeting does not
# date a fire reported after it), or a state anywhere in the text (already safe, only light
# injuries, a risk, a question).
TIME_OVER_SIGNALS: Final = frozenset({"past", "recurring", "today_earlier", "future"})
STATE_OVER_SIGNALS: Final = frozenset({"safe", "light_injury", "risk", "question"})
TIME_DISTANCE: Final = 2
# "Light injuries that already happened do not make a report P1" (TRIAGE.md): a bruise or a
# scratch rules out the dangers it describes (blood, a blow, a stab, a weapon, an animal's
# attack, a cry for help in that fight), not a fire, a drowning, someone trapped, unconscious
# or bleeding heavily.
MINOR_INJURY_RULES_OUT: Final = frozenset(
    {"blood", "stab_or_crash", "weapon", "attack", "animal_attack", "cry_for_help"}
)

# The signals quoted as reasons for each priority (see :func:`signal_reasons`).
SUPPORTING_SIGNALS: Final[Mapping[Priority, frozenset[str]]] = {
    "P1": URGENT_SIGNALS,
    "P2": NOW_SIGNALS | URGENT_SIGNALS,
    "P3": PAST_SIGNALS | CALM_SIGNALS,
    "P4": frozenset(),
}


def danger_now(category: Category, signals: Cues) -> str | None:
    """The phrase that makes this a P1 by rule (see ``DANGER_SIGNALS``), if any."""
    if signals.negated or not STATE_OVER_SIGNALS.isdisjoint(signals.found):
        return None
    wanted = DANGER_SIGNALS if category in DANGER_CATEGORIES else None
    if category == "drugs":
        wanted = BODY_SIGNALS
    elif category == "traffic":
        # "đâm" is how a crash is told, "húc văng" too; the injuries say whether it is P1.
        wanted = DANGER_SIGNALS - {"stab_or_crash", "animal_attack"}
    elif category == "other":
        # A bite that bled already happened: "light injuries that already happened do not
        # make a report P1"; an animal attacking people now, or an attack that leaves someone
        # unconscious, trapped or bleeding heavily, does.
        wanted = DANGER_SIGNALS - {"blood", "stab_or_crash", "weapon"}
    elif category == "public_order":
        # A brawl becomes P1 when someone bleeds, is attacked or a weapon comes out.
        wanted = BODY_SIGNALS | {"weapon", "attack", "cry_for_help"}
    if wanted is None:
        return None
    if signals.has("minor_injury"):
        wanted = wanted - MINOR_INJURY_RULES_OUT
    for name, phrase in signals.found.items():
        if name in wanted and not any(
            signals.near(name, when, TIME_DISTANCE) for when in TIME_OVER_SIGNALS
        ):
            return phrase
    return None


def person_missing(signals: Cues, lexicon: Cues) -> bool:
    """Someone is still missing: not a lost dog or a lost wallet, not already found."""
    return (
        signals.has("missing")
        and not signals.has("safe")
        and not any(lexicon.has(k) for k in ("animal", "lost_item", "resolved"))
    )


def animal_hurting_now(signals: Cues, lexicon: Cues) -> bool:
    """A dangerous animal has just hurt people and nothing says it is over."""
    return (
        lexicon.has("animal")
        and signals.has("harm")
        and not any(signals.has(s) for s in ("past", "recurring", "safe"))
    )


def decide_priority(
    category: Category,
    probabilities: Mapping[str, float],
    signals: Cues,
    lexicon: Cues,
) -> tuple[Priority, list[str]]:
    """Priority of a message of ``category`` and the reasons to show for it.

    ``probabilities`` are the priority model's (P1..P3) for this message.
    """
    if category == "greeting":
        return "P4", ["priority: greeting, no action"]
    phrase = danger_now(category, signals)
    if phrase is not None:
        others = [r for r in signal_reasons("P1", signals) if f"'{phrase}'" not in r]
        return "P1", [f"urgency: '{phrase}' → danger now", *others[:2]]
    if category == "other" and person_missing(signals, lexicon):
        # TRIAGE.md: a missing child, or a person still missing, is P2.
        return "P2", ["rule: person still missing", *signal_reasons("P2", signals)]
    if category == "other" and animal_hurting_now(signals, lexicon):
        # A dangerous animal that has just hurt people is a hazard now.
        return "P2", ["rule: dangerous animal hurting people now", *signal_reasons("P2", signals)]
    scores = {cls: p for cls, p in probabilities.items() if cls != "P4"}
    if scores.get("P1", 0.0) >= P1_MIN_PROBABILITY:
        return "P1", signal_reasons("P1", signals)
    priority: Priority = "P2" if scores.get("P2", 0.0) >= scores.get("P3", 0.0) else "P3"
    return priority, signal_reasons(priority, signals)


def signal_reasons(priority: Priority, signals: Cues, limit: int = 3) -> list[str]:
    """Human-readable signals that support ``priority``, at most ``limit``."""
    wanted = SUPPORTING_SIGNALS[priority]
    reasons: list[str] = []
    for name, phrase in signals.found.items():
        if name not in wanted:
            continue
        if name in signals.notes:
            reason = signals.notes[name]
        elif name in URGENT_SIGNALS:
            reason = f"urgency: '{phrase}'"
        elif name in PAST_SIGNALS:
            reason = f"time: '{phrase}' → past"
        elif name in {"now", "just", "tonight"}:
            reason = f"time: '{phrase}' → now"
        else:
            reason = f"time: '{phrase}'"
        # One phrase can raise two signals ("cứu với": a cry for help, and help).
        if reason not in reasons:
            reasons.append(reason)
        if len(reasons) >= limit:
            break
    return reasons
