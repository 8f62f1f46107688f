"""`python -m deploy.check`: run every deploy check and print one line per problem.

    python -m deploy.check              # everything
    python -m deploy.check schemas env  # only these checks
    python -m deploy.check --list       # the checks and what they do
    python -m deploy.check --write      # regenerate KafkaTopics and the PrometheusRule first

Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time

from deploy.check import generate
from deploy.check.render import BuildError
from deploy.check.suite import CHECKS, Suite, run
from deploy.check.tools import ToolError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.check", description=__doc__.split("\n")[0]
    )
    parser.add_argument("checks", nargs="*", help=f"a subset of: {', '.join(CHECKS)}")
    parser.add_argument("--list", action="store_true", help="list the checks")
    parser.add_argument("--write", action="store_true", help="regenerate the generated manifests")
    args = parser.parse_args(argv)
    if args.list:
        for name, doc in CHECKS.items():
            print(f"  {name:<13} {doc}")
        return 0
    unknown = [c for c in args.checks if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)}; see --list")
    suite = Suite()
    if args.write:
        for path in generate.write(suite.root):
            print(f"wrote {path.relative_to(suite.root)}")
    passed = failed = 0
    for name in args.checks or list(CHECKS):
        start = time.monotonic()
        try:
            problems = run(suite, name)
        except (BuildError, ToolError) as exc:
            problems = [str(exc)]
        took = time.monotonic() - start
        if problems:
            failed += 1
            print(f"FAIL {name} ({len(problems)} problem(s), {took:.1f}s)")
            for problem in problems:
                print("  - " + problem.replace("\n", "\n    "))
        else:
            passed += 1
            print(f"ok   {name} ({took:.1f}s)")
    for note in dict.fromkeys(suite.notes):
        print(f"note: {note}")
    print(f"deploy-check: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
