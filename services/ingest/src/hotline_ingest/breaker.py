"""Fail fast while a dependency is known to be down, with one probe request at a time.

During an outage every provider keeps retrying. Without a breaker each retry holds a request
for the full deadline (claim, then publish) and loads the other dependency on the way (a claim
insert per retry while the broker is down), so when the dependency comes back ingest is buried
under its own backlog. With one: after a failure, requests are answered 503 at once for
`open_s`; then a single request probes the dependency, and its outcome closes or reopens it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Breaker:
    def __init__(self, open_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.open_s = open_s
        self._now = monotonic
        self._open_until: float | None = None
        self._probing = False

    def enter(self) -> bool | None:
        """May a request use the dependency? None: answer 503 now. False: yes (closed).
        True: yes, as the probe; call `leave(True)` when done, whatever happened."""
        if self._open_until is None:
            return False
        if self._probing or self._now() < self._open_until:
            return None
        self._probing = True
        return True

    def leave(self, probe: bool | None) -> None:
        """A probe that never reached the dependency (a duplicate, say) lets the next one try."""
        if probe:
            self._probing = False

    def succeeded(self) -> None:
        self._open_until = None

    def failed(self) -> None:
        self._open_until = self._now() + self.open_s

    @property
    def is_open(self) -> bool:
        return self._open_until is not None
