"""Live-queue benchmark: how long a citizen's message takes to appear on a signed-in console.

    .venv/bin/python deploy/local/stack.py with-stack -- \\
        .venv/bin/python services/console/bench/bench_live.py [--messages 20] [--interval 2]

Starts the provider sandbox, the four services and the console as processes (the launcher of
the end-to-end tests, its own topics and database), signs a headless Chromium (Debian's, at
/usr/bin/chromium) in as the Staff Office, and sends `--messages` reports, one every
`--interval` seconds, as signed Zalo webhooks to ingest. For each it measures, on the page:

* **webhook → screen**: from the webhook's POST to the case's row in the live queue
  (ingest → Kafka → classifier → dispatcher → Kafka → console → SSE → the queue's re-fetch);
* **decision → screen**: from the dispatcher's decision (the case's `opened_at`) to the row.

It prints p50, p95 and max of each, and how many reports were on screen within a second (the
issue's "within a second"), then stops everything it started and deletes its data. The queue's
30 s fallback poll is switched off (`--no-poll`, by default), so a row can only arrive by the
push; a report not on screen after 10 s is counted as missed.

The browser tests check the mechanism (a pushed row, no reload); this script measures the speed,
which depends on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from hotline_cli.bench import percentile
from hotline_cli.pipeline import SERVICES, Pipeline
from hotline_ingest.samples import Samples
from hotline_ingest.settings import IngestSettings

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = "/usr/bin/chromium"
STAFF = "dev-staff-token"
MISSED_AFTER_S = 10.0
# Every report a distinct incident (another category or another district), so none is merged
# into an earlier case: each opens a row of its own.
INCIDENTS = [
    "Tai nạn giao thông, xe máy va chạm với ô tô",
    "Cháy nhà dân, khói bốc cao",
    "Nhà em bị trộm mất xe máy đêm qua",
    "Em bị lừa đảo chuyển khoản qua điện thoại mất 20 triệu",
    "Có nhóm thanh niên tụ tập sử dụng ma túy",
    "Hàng xóm hát karaoke ồn ào quá khuya",
    "Xưởng xả nước thải ra sông bốc mùi hôi",
    "Có người bán hàng cấm công khai ngoài chợ",
]
DISTRICTS = [
    "thành phố Huế",
    "huyện Phong Điền",
    "huyện Quảng Điền",
    "thị xã Hương Trà",
    "thị xã Hương Thủy",
    "huyện Phú Vang",
    "huyện Phú Lộc",
    "huyện Nam Đông",
    "huyện A Lưới",
]


ROW_SHOWN = "m => [...document.querySelectorAll('tr.case')].some(r => r.textContent.includes(m))"
"""True once the queue shows the case row whose text carries the marker."""


def case_opened_at(pipe: Pipeline, marker: str) -> float | None:
    found = httpx.get(
        f"{pipe.url('dispatcher')}/api/v1/cases",
        params={"q": marker},
        headers={"Authorization": f"Bearer {STAFF}"},
        timeout=10,
    ).json()
    if not found["items"]:
        return None
    opened = datetime.fromisoformat(found["items"][0]["opened_at"]).replace(tzinfo=UTC)
    return opened.timestamp()


def run(args: argparse.Namespace) -> int:
    from playwright.sync_api import sync_playwright

    pipe = Pipeline(
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        mongodb_uri=os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/"),
        namespace=f"blive{uuid.uuid4().hex[:6]}",
        log_dir=REPO / ".local" / "logs" / "pipelines",
        services=(*SERVICES, "console"),
        extra_env={"LOG_LEVEL": "WARNING"},
    )
    samples = Samples(IngestSettings(), pipe.url("ingest"))
    to_screen: list[float] = []
    after_decision: list[float] = []
    decision_to_push: list[float] = []
    push_to_screen: list[float] = []
    missed = 0
    print(f"starting the pipeline and the console (namespace {pipe.namespace})…", flush=True)
    try:
        pipe.start(timeout_s=120)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{pipe.url('console')}/")
            page.fill("input[name=token]", STAFF)
            page.click("button[type=submit]")
            page.wait_for_url(f"{pipe.url('console')}/")
            page.wait_for_selector("#live.on")
            if not args.poll:
                # Only the push may bring a row: the queue's 30 s fallback poll is removed.
                page.evaluate(
                    "document.getElementById('queue').setAttribute("
                    "'hx-trigger', 'sse:changed, htmx:sseOpen from:body'); "
                    "htmx.process(document.getElementById('queue'))"
                )
            reports = [f"{what} ở {where}" for where in DISTRICTS for what in INCIDENTS]
            # When each push reached the page (the browser's clock is the machine's).
            page.evaluate(
                "window.__pushes = []; document.body.addEventListener('htmx:sseMessage', "
                "() => window.__pushes.push(Date.now() / 1000))"
            )
            for i in range(args.warmup + args.messages):
                marker = f"ref{uuid.uuid4().hex[:6]}"
                text = f"{reports[i % len(reports)]} ({marker})"
                delivery = samples.zalo(text=text, user_id=f"77{uuid.uuid4().int % 10**14:014d}")
                sent = time.time()
                response = httpx.post(
                    pipe.url("ingest") + delivery.path,
                    content=delivery.body,
                    headers=delivery.headers,
                    timeout=10,
                )
                response.raise_for_status()
                try:
                    # Checked at every frame: a locator's wait polls every 500 ms after the
                    # first second, which would add up to half a second to what is measured.
                    page.wait_for_function(
                        ROW_SHOWN, arg=marker, polling="raf", timeout=MISSED_AFTER_S * 1000
                    )
                    seen = time.time()
                except Exception:  # Playwright's TimeoutError
                    seen = None
                warm = i >= args.warmup
                if seen is None:
                    missed += warm
                    print(f"  {marker}: not on screen after {MISSED_AFTER_S:.0f} s", flush=True)
                else:
                    decided = case_opened_at(pipe, marker)
                    pushes = [t for t in page.evaluate("window.__pushes") if sent < t <= seen]
                    pushed = pushes[-1] if pushes else None
                    if warm:
                        to_screen.append(seen - sent)
                        if decided is not None:
                            after_decision.append(seen - decided)
                        if decided is not None and pushed is not None:
                            decision_to_push.append(pushed - decided)
                            push_to_screen.append(seen - pushed)
                    print(
                        f"  {marker}: webhook → screen {seen - sent:.2f} s"
                        + (f", decision → screen {seen - decided:.2f} s" if decided else "")
                        + (f", push → screen {seen - pushed:.2f} s" if pushed else "")
                        + ("" if warm else " (warm-up)"),
                        flush=True,
                    )
                time.sleep(max(0.0, args.interval - (time.time() - sent)))
            browser.close()
    finally:
        pipe.stop()
        pipe.delete_data()
    if not to_screen:
        print("no report reached the screen")
        return 1
    within = sum(1 for s in to_screen if s < 1.0)
    every = f"one every {args.interval:g} s"
    print(f"\nlive queue, {len(to_screen)} reports {every} (p50 / p95 / max):")
    for name, values in (
        ("webhook → screen", to_screen),
        ("decision → screen", after_decision),
        ("  decision → push", decision_to_push),
        ("  push → screen", push_to_screen),
    ):
        if values:
            print(
                f"  {name:<18} {statistics.median(values) * 1000:6.0f} / "
                f"{(percentile(values, 95) or 0.0) * 1000:6.0f} / {max(values) * 1000:6.0f} ms"
            )
    print(f"  on screen within 1 s: {within} of {len(to_screen)}; missed: {missed}")
    return 0 if missed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20, help="reports measured")
    parser.add_argument("--warmup", type=int, default=2, help="reports sent first, not counted")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between reports")
    parser.add_argument(
        "--poll", action="store_true", help="keep the queue's 30 s fallback poll (off: push only)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.warmup + args.messages <= len(INCIDENTS) * len(DISTRICTS):
        parser.error(f"--warmup + --messages must be 1 to {len(INCIDENTS) * len(DISTRICTS)}")
    if args.messages < 1 or args.interval <= 0:
        parser.error("--messages must be at least 1 and --interval more than 0")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
