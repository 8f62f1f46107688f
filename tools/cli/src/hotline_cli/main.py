"""`hotline`: the operator's command-line tool.

    hotline status                         every component, readiness and consumer lag
    hotline simulate --scenario day        play a scenario through the real webhooks
    hotline simulate --scenario flood --rate 20 --duration 60
    hotline simulate --scenario day --rate 2      the day's script at 2 messages/s
    hotline cases [--state ...] [--priority P1] [--unit ...] [--open]
    hotline case HUE-20240124-0042         a case with its timeline
    hotline ack HUE-20240124-0042          acknowledge (stops the escalation)
    hotline replay-deadletters [--reason invalid] [--dry-run]
    hotline bench [--quick] [--json]       pipeline throughput and latency vs the Kafka ceiling

Addresses and the ops API token come from HOTLINE_CLI_* variables (defaults match `make run`).
"""

from __future__ import annotations

import argparse
import sys

from hotline_cli.settings import CliSettings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hotline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="every component, its readiness and consumer lag")

    sim = sub.add_parser("simulate", help="play a scenario through the real, signed webhooks")
    sim.add_argument("--scenario", default="day", help="day, flood, or a path to a YAML file")
    sim.add_argument(
        "--rate",
        type=float,
        default=None,
        help="messages per second (the flood's default 10; a script's messages at this "
        "rate on average, instead of its written pace)",
    )
    sim.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds (the flood's default 60; a script fitted into this time; "
        "with a script, give --rate or --duration)",
    )
    sim.add_argument(
        "--quiet",
        action="store_true",
        help="no live view: a line of counters every 2 s, then the summary "
        "(always so above 5 messages/s)",
    )

    cases = sub.add_parser("cases", help="list cases")
    cases.add_argument("--state", action="append", help="new, assigned, acknowledged, ...")
    cases.add_argument("--priority", action="append", help="P1..P4")
    cases.add_argument("--category", action="append")
    cases.add_argument("--unit")
    cases.add_argument("--location")
    cases.add_argument("--open", action="store_true", help="only open cases")
    cases.add_argument("--limit", type=int, default=50)

    case = sub.add_parser("case", help="one case with its timeline")
    case.add_argument("case_id")

    ack = sub.add_parser("ack", help="acknowledge a case")
    ack.add_argument("case_id")
    ack.add_argument("--note")

    dlq = sub.add_parser(
        "replay-deadletters",
        help="re-publish dead letters to their topic (undecodable values and undeliverable "
        "alerts are listed, never replayed)",
    )
    dlq.add_argument("--reason", help="only this reason (invalid, handler_error, ...)")
    dlq.add_argument("--dry-run", action="store_true")

    from hotline_cli import bench

    bench.add_parser(sub)

    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    settings = CliSettings()
    if args.command == "status":
        from hotline_cli import status

        return status.run(settings)
    if args.command in ("cases", "case", "ack"):
        from hotline_cli.ops import OpsApi, OpsApiError, render_case, render_cases

        api = OpsApi(settings)
        try:
            if args.command == "cases":
                print(
                    render_cases(
                        api.cases(
                            state=args.state,
                            priority=args.priority,
                            category=args.category,
                            unit=args.unit,
                            location=args.location,
                            open_only=args.open,
                            limit=args.limit,
                        )
                    )
                )
            elif args.command == "case":
                print(render_case(api.case(args.case_id)))
            else:
                result = api.acknowledge(args.case_id, args.note)
                print(f"{result['case_id']}: {result['state']}")
        except OpsApiError as exc:
            print(f"hotline: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "replay-deadletters":
        from hotline_cli import deadletters

        return deadletters.run(settings, args.reason, args.dry_run)
    if args.command == "bench":
        from hotline_cli import bench

        return bench.run(settings, args, argv[1:])
    if args.command == "simulate":
        from hotline_cli import simulate

        return simulate.run(
            settings, args.scenario, rate=args.rate, duration=args.duration, quiet=args.quiet
        )
    return 2


if __name__ == "__main__":
    sys.exit(main())
