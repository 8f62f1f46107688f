"""Token buckets keyed by sender or client address, in process memory.

Per replica on purpose: a flood is absorbed without a shared store on the hot path (no extra
database round trip per request), at the price of the limit scaling with the replica count,
which is fine for a flood guard (it stops one sender from burying the call-takers, it is not a
quota). Memory is bounded: the least recently used buckets are forgotten beyond `max_keys`
(a forgotten bucket is full again, which only ever errs towards accepting).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucketLimiter:
    """`burst` requests at once, refilled at `per_minute`, independently for every key."""

    def __init__(
        self,
        burst: int,
        per_minute: float,
        *,
        max_keys: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_minute <= 0:
            raise ValueError("burst must be >= 1 and per_minute > 0")
        self.burst = float(burst)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self._now = monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def try_acquire(self, key: str) -> float:
        """Take one token for `key`. Returns 0.0 when allowed, else seconds until one is free."""
        now = self._now()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            wait = 0.0
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)  # re-inserted last: most recently used
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def retry_after(self, wait_s: float) -> str:
        """A `Retry-After` header value (whole seconds, at least 1)."""
        return str(max(1, math.ceil(wait_s)))

    def __len__(self) -> int:
        return len(self._buckets)
