"""Organisation configuration: the default loads, and every kind of mistake names its line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.contracts.labels import Category, District, Priority
from hotline_dispatcher.config import (
    ConfigError,
    default_paths,
    load_organisation,
    write_routing_variant,
)

ORG, ROSTERS, ROUTING = default_paths()


def test_the_default_organisation_of_thua_thien_hue_loads() -> None:
    org = load_organisation()
    assert org.director.name == "Nguyễn Thanh Tuấn"
    assert org.director.rank == "Đại tá"
    assert org.staff_office.id == "pv01"
    assert set(org.district_police) == set(District)
    call_takers = [p for p in org.people.values() if p.role.value == "call_taker"]
    assert len(call_takers) == 5  # the Director's 5-person team
    assert org.departments[Category.DRUGS] == ("pc04",)
    assert org.departments[Category.FRAUD] == ("pa05", "pc03")  # first leads, others informed
    for person in org.people.values():
        assert person.contacts, person.id


def test_a_routing_variant_changes_only_what_it_names(tmp_path: Path) -> None:
    default = load_organisation().routing
    path = write_routing_variant(
        tmp_path / "run" / "routing.yaml", timeouts_s={"P1": 3}, merge_similarity=1.0
    )
    variant = load_organisation(ORG, ROSTERS, path).routing
    assert variant.timeouts_s[Priority.P1] == 3
    assert variant.timeouts_s[Priority.P2] == default.timeouts_s[Priority.P2]
    assert variant.merge.similarity == 1.0 != default.merge.similarity
    assert variant.rules == default.rules


def _copy(tmp_path: Path) -> tuple[Path, Path, Path]:
    out = []
    for src in (ORG, ROSTERS, ROUTING):
        dst = tmp_path / src.name
        shutil.copy(src, dst)
        out.append(dst)
    return out[0], out[1], out[2]


def _replace(path: Path, old: str, new: str) -> int:
    """Replace the first `old` by `new`; return the line where it was."""
    text = path.read_text(encoding="utf-8")
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old) :], encoding="utf-8")
    return text[:at].count("\n") + 1


def _problems(tmp_path: Path, org: Path, rosters: Path, routing: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_organisation(org, rosters, routing)
    return [str(i) for i in info.value.issues]


def test_an_unknown_district_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    org, rosters, routing = _copy(tmp_path)
    line = _replace(org, "jurisdiction: [phu_loc]", "jurisdiction: [phu_locc]")
    problems = _problems(tmp_path, org, rosters, routing)
    assert any(
        p.startswith(f"organisation.yaml:{line}:") and "unknown district 'phu_locc'" in p
        for p in problems
    ), problems


def test_an_officer_without_a_contact_channel_is_refused(tmp_path: Path) -> None:
    org, rosters, routing = _copy(tmp_path)
    text = org.read_text(encoding="utf-8")
    start = text.index("      - id: a-luoi-o3")
    contacts = text.index("        contacts:", start)
    end = text.index("      - id:", contacts)
    org.write_text(text[:contacts] + "        contacts: []\n" + text[end:], encoding="utf-8")
    line = text[:start].count("\n") + 1
    problems = _problems(tmp_path, org, rosters, routing)
    assert (
        f"organisation.yaml:{line}: officer 'a-luoi-o3' of unit 'ca-a-luoi' has no contact channel"
        in problems
    )


def test_a_shift_gap_is_refused(tmp_path: Path) -> None:
    org, rosters, routing = _copy(tmp_path)
    text = rosters.read_text(encoding="utf-8")
    start = text.index("  - unit: ca-nam-dong")
    shifts = text.index("    shifts:", start)
    rosters.write_text(
        text[:start]
        + text[start:].replace(
            '{id: night, start: "19:00", end: "07:00"}',
            '{id: night, start: "20:00", end: "07:00"}',
            1,
        ),
        encoding="utf-8",
    )
    line = text[:shifts].count("\n") + 1
    problems = _problems(tmp_path, org, rosters, routing)
    assert any(
        p.startswith(f"rosters.yaml:{line}:") and "shift gap" in p and "19:00 to 20:00" in p
        for p in problems
    ), problems


def test_a_rotation_day_without_anyone_on_a_shift_is_a_gap(tmp_path: Path) -> None:
    org, rosters, routing = _copy(tmp_path)
    line = _replace(
        rosters,
        "        - {day: [phu-vang-o1, phu-vang-o2], night: [phu-vang-o3]}",
        "        - {day: [phu-vang-o1, phu-vang-o2], night: []}",
    )
    problems = _problems(tmp_path, org, rosters, routing)
    assert any(
        p.startswith(f"rosters.yaml:{line}:") and "nobody on call for shift 'night'" in p
        for p in problems
    ), problems


def test_an_unknown_unit_in_a_rule_and_an_unknown_category_are_refused(tmp_path: Path) -> None:
    org, rosters, routing = _copy(tmp_path)
    unit_line = _replace(routing, "responsible: thanh-tra", "responsible: px03")
    cat_line = _replace(routing, "category: [officer_conduct]", "category: [oficer_conduct]")
    problems = _problems(tmp_path, org, rosters, routing)
    assert any(
        p.startswith(f"routing.yaml:{unit_line}:") and "unknown unit 'px03'" in p for p in problems
    ), problems
    assert any(
        p.startswith(f"routing.yaml:{cat_line}:") and "unknown category 'oficer_conduct'" in p
        for p in problems
    ), problems


def test_a_misspelt_key_and_broken_yaml_name_their_lines(tmp_path: Path) -> None:
    org, rosters, routing = _copy(tmp_path)
    line = _replace(routing, "  similarity: 0.6", "  similarty: 0.6")
    problems = _problems(tmp_path, org, rosters, routing)
    assert any(p.startswith(f"routing.yaml:{line}:") and "similarty" in p for p in problems)

    org2, rosters2, routing2 = _copy(tmp_path)
    _replace(rosters2, "rosters:\n", "rosters:\n  - unit: [unclosed\n  x: {\n")
    problems = _problems(tmp_path, org2, rosters2, routing2)
    assert len(problems) == 1 and problems[0].startswith("rosters.yaml:") and "YAML" in problems[0]


def test_an_unknown_person_in_a_roster_and_a_wrong_commander(tmp_path: Path) -> None:
    org, rosters, routing = _copy(tmp_path)
    roster_line = _replace(rosters, "night: [pc04-o3]}", "night: [pc04-o9]}")
    cmd_line = _replace(org, "commander: pc05-cmd", "commander: pc04-cmd")
    problems = _problems(tmp_path, org, rosters, routing)
    assert any(p.startswith(f"rosters.yaml:{roster_line}:") and "'pc04-o9'" in p for p in problems)
    assert any(
        p.startswith(f"organisation.yaml:{cmd_line}:") and "not a member" in p for p in problems
    )


def test_the_service_refuses_to_start_and_names_the_line(tmp_path: Path) -> None:
    org, rosters, routing = _copy(tmp_path)
    line = _replace(org, "jurisdiction: [nam_dong]", "jurisdiction: [nam_dongg]")
    env = {
        "DISPATCHER_ORGANISATION_FILE": str(org),
        "DISPATCHER_ROSTERS_FILE": str(rosters),
        "DISPATCHER_ROUTING_FILE": str(routing),
        "PATH": "/usr/bin:/bin",
    }
    bad = subprocess.run(
        [sys.executable, "-m", "hotline_dispatcher.main", "--check-config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert (
        f"organisation.yaml:{line}: unit 'ca-nam-dong': unknown district 'nam_dongg'" in bad.stderr
    )
    good = subprocess.run(
        [sys.executable, "-m", "hotline_dispatcher.main", "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "configuration ok" in good.stdout
