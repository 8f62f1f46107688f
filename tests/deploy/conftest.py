"""tests/deploy: the deploy/ checks under pytest (`make test`), plus broken copies that they
must catch. The checks live in deploy/check (also run alone by `make k8s-check`)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `deploy.check` is imported from the repository root
    sys.path.insert(0, str(REPO))
