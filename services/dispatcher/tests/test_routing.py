"""The routing table over the default Thừa Thiên Huế configuration."""

from __future__ import annotations

import pytest

from hotline.contracts.labels import Category, District, InboundKind, Priority
from hotline_dispatcher.config import Organisation, load_organisation
from hotline_dispatcher.routing import RouteInput, route

C, P, D = Category, Priority, District


@pytest.fixture(scope="module")
def org() -> Organisation:
    return load_organisation()


TABLE = [
    # category, priority, location → responsible, informed (in order)
    (C.VIOLENCE, P.P1, D.HUE_CITY, "ca-tp-hue", ("bgd", "pc02")),
    (C.FIRE_RESCUE, P.P1, D.PHU_LOC, "ca-phu-loc", ("bgd", "pc07")),
    (C.TRAFFIC, P.P1, D.HUONG_THUY, "ca-huong-thuy", ("bgd", "pc08")),
    (C.THEFT, P.P2, D.PHU_VANG, "ca-phu-vang", ("pc02",)),
    (C.DRUGS, P.P2, D.A_LUOI, "ca-a-luoi", ("pc04",)),
    (C.FRAUD, P.P2, D.HUONG_TRA, "ca-huong-tra", ("pa05", "pc03")),
    (C.GAMBLING, P.P2, D.QUANG_DIEN, "ca-quang-dien", ("pc02",)),
    (C.PUBLIC_ORDER, P.P2, D.PHONG_DIEN, "ca-phong-dien", ("pc06",)),
    (C.OTHER, P.P2, D.NAM_DONG, "ca-nam-dong", ()),
    # P3 in a specialised category → that department, wherever it is
    (C.ENVIRONMENT, P.P3, D.PHONG_DIEN, "pc05", ()),
    (C.DRUGS, P.P3, D.HUE_CITY, "pc04", ()),
    (C.FRAUD, P.P3, None, "pa05", ()),
    (C.TRAFFIC, P.P3, D.HUONG_THUY, "pc08", ()),
    (C.ADMIN_REQUEST, P.P3, D.HUE_CITY, "pc06", ()),
    (C.THEFT, P.P3, None, "pc02", ()),
    (C.PUBLIC_ORDER, P.P3, D.PHU_VANG, "pc06", ()),  # pc06: admin requests, public order
    (C.PUBLIC_ORDER, P.P3, None, "pc06", ()),
    # P3 without a department but with a place → the district police
    (C.OTHER, P.P3, D.A_LUOI, "ca-a-luoi", ()),
    # no location, no rule → the Staff Office decides (P1 still informs the Director)
    (C.VIOLENCE, P.P1, None, "pv01", ("bgd",)),
    (C.OTHER, P.P2, None, "pv01", ()),
    (C.OTHER, P.P3, None, "pv01", ()),
    # complaints about officers go to the Inspectorate, never to the unit complained about
    (C.OFFICER_CONDUCT, P.P3, D.HUE_CITY, "thanh-tra", ("pv01",)),
    (C.OFFICER_CONDUCT, P.P2, D.PHU_LOC, "thanh-tra", ("pv01",)),
    (C.OFFICER_CONDUCT, P.P1, None, "thanh-tra", ("bgd", "pv01")),
]


@pytest.mark.parametrize(("category", "priority", "location", "responsible", "informed"), TABLE)
def test_routing_table(
    org: Organisation,
    category: Category,
    priority: Priority,
    location: District | None,
    responsible: str,
    informed: tuple[str, ...],
) -> None:
    result = route(org, RouteInput(category, priority, location))
    assert (result.responsible_unit, result.informed_units) == (responsible, informed)
    assert result.reasons[0].endswith(f"→ {responsible} responds")


def test_every_district_has_its_own_police(org: Organisation) -> None:
    for district in District:
        result = route(org, RouteInput(C.VIOLENCE, P.P1, district))
        unit = org.units[result.responsible_unit]
        assert unit.kind == "district" and district in unit.jurisdiction


def test_every_p1_informs_the_director(org: Organisation) -> None:
    for category in Category:
        if category == C.GREETING:
            continue
        for location in (None, *District):
            result = route(org, RouteInput(category, P.P1, location, InboundKind.MESSAGE))
            assert "bgd" in result.informed_units, (category, location)
            p2 = route(org, RouteInput(category, P.P2, location))
            assert "bgd" not in p2.informed_units


def test_every_category_a_department_handles_goes_to_it_at_p3(org: Organisation) -> None:
    """routing.yaml's p3-specialised rule and organisation.yaml's department categories agree."""
    for category, departments in org.departments.items():
        if not departments or category == C.OFFICER_CONDUCT:
            continue  # officer conduct: the Inspectorate, by its own rule
        for location in (None, D.PHU_LOC):
            result = route(org, RouteInput(category, P.P3, location))
            assert (result.responsible_unit, result.rule_id) == (
                departments[0],
                "p3-specialised",
            ), (category, location)
