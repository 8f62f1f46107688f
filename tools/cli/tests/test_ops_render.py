"""How `hotline case ID` prints a case (pure)."""

from __future__ import annotations

from typing import Any

from hotline_cli.ops import render_case


def case(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "case_id": "HUE-20240124-0042",
        "priority": "P1",
        "category": "fire_rescue",
        "state": "assigned",
        "location": "phu_vang",
        "locality": "Phú Đa",
        "responsible_unit": "ca-phu-vang",
        "assignee": {"name": "Trần Văn Bình", "rank": "Đại úy"},
        "reporter": {"channel": "sms", "phone": "+849******89"},
        "text": "Nước lên nhanh ở Phú Đa",
        "timeline": [],
        "directives": [],
    }
    doc.update(changes)
    return doc


def test_the_case_names_its_place_beside_its_district() -> None:
    assert "  district: phu_vang (Phú Đa)   unit: ca-phu-vang" in render_case(case())
    assert "  district: phu_vang   unit: ca-phu-vang" in render_case(case(locality=None))
    assert "  district: -   unit:" in render_case(case(location=None, locality=None))
