"""`hotline cases`, `hotline case ID`, `hotline ack ID`: the ops API from a terminal."""

from __future__ import annotations

from typing import Any

import httpx

from hotline_cli.settings import CliSettings


class OpsApiError(Exception):
    pass


class OpsApi:
    """A thin client of the dispatcher's ops API (/api/v1) with the operator's bearer token."""

    def __init__(self, settings: CliSettings, client: httpx.Client | None = None) -> None:
        self.base = settings.dispatcher_url.rstrip("/") + "/api/v1"
        self.client = client or httpx.Client(timeout=10.0)
        self.headers = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.client.request(method, self.base + path, headers=self.headers, **kwargs)
        except httpx.HTTPError as exc:
            raise OpsApiError(f"dispatcher unreachable at {self.base}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise OpsApiError(f"{method} {path} → {resp.status_code}: {detail}")
        return resp.json()

    def cases(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v not in (None, [], False)}
        result: dict[str, Any] = self._call("GET", "/cases", params=params)
        return result

    def case(self, case_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/cases/{case_id}")
        return result

    def acknowledge(self, case_id: str, note: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/cases/{case_id}/acknowledge", json={"note": note}
        )
        return result

    def directive(self, case_id: str, text: str, due_in_minutes: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST",
            f"/cases/{case_id}/directives",
            json={"text": text, "due_in_minutes": due_in_minutes},
        )
        return result

    def callback_done(self, case_id: str, reached: bool, note: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/cases/{case_id}/callback-done", json={"reached": reached, "note": note}
        )
        return result

    def daily_stats(self, day: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "GET", "/stats/daily", params={"date": day} if day else None
        )
        return result


def render_cases(listing: dict[str, Any]) -> str:
    lines = [
        f"{'case':<19} {'state':<13} {'pri':<3} {'category':<16} {'district':<11} "
        f"{'unit':<12} {'assignee':<22} summary"
    ]
    for c in listing.get("items", []):
        assignee = (c.get("assignee") or {}).get("name") or "-"
        lines.append(
            f"{c['case_id']:<19} {c['state']:<13} {c['priority']:<3} {c['category']:<16} "
            f"{c.get('location') or '-':<11} {c['responsible_unit']:<12} {assignee[:22]:<22} "
            f"{c['summary'][:60]}"
        )
    lines.append(f"({len(listing.get('items', []))} of {listing.get('total', 0)})")
    return "\n".join(lines)


def render_case(case: dict[str, Any]) -> str:
    assignee = case.get("assignee") or {}
    reporter = case.get("reporter") or {}
    head = [
        f"{case['case_id']}  {case['priority']} {case['category']}  state={case['state']}",
        f"  district: {case.get('location') or '-'}"
        + (f" ({case['locality']})" if case.get("locality") else "")
        + f"   unit: {case['responsible_unit']}   "
        f"assignee: {assignee.get('name', '-')} ({assignee.get('rank') or ''})",
        f"  reporter: {reporter.get('channel')} "
        f"{reporter.get('phone') or reporter.get('address') or '-'}",
        f"  text: {case.get('text', '')}",
        "",
        "  timeline:",
    ]
    for e in case.get("timeline", []):
        actor = e.get("actor") or {}
        text = f" — {e['text']}" if e.get("text") else ""
        head.append(
            f"    {e['at'][:19]}  {e['type']:<20} {actor.get('name') or actor.get('id')}{text}"
        )
    for d in case.get("directives", []):
        flag = " OVERDUE" if d.get("overdue") else ""
        head.append(f"  directive ({d['state']}{flag}, due {d['deadline'][:16]}): {d['text']}")
    return "\n".join(head)
