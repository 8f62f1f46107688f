"""Token buckets per provider and per (provider, recipient), so sends respect provider limits.

The buckets live in each process. The configured limits are the provider's, for the whole
deployment: with up to N replicas sending at once (`NOTIFIER_RATE_LIMIT_REPLICAS`, the
autoscaler's maximum), each replica enforces 1/N of every rate (`replica_share`), so together
they stay within the provider's limit even when one recipient's sends land on different
replicas. Decision: a static share rather than a counter shared through MongoDB, which would
add a database round trip to every send for limits the providers enforce anyway (their 429 and
`Retry-After` are honoured, delivery.py). With fewer replicas running than N, each stays at its
share: under-using a quota is safe, exceeding it is not.

This is a throughput control in real time (monotonic clock), not a schedule, so it does not
take the injectable `Clock`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping

from .settings import RateLimit


def replica_share(limits: Mapping[str, RateLimit], replicas: int) -> dict[str, RateLimit]:
    """Each of `replicas` replicas' part of the provider limits: the rate divided by
    `replicas`, and the burst too (at least 1, or a send could never start)."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, not {replicas}")
    return {
        key: RateLimit(rate=limit.rate / replicas, burst=max(1.0, limit.burst / replicas))
        for key, limit in limits.items()
    }


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = time.monotonic()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def reserve(self) -> float:
        """Take one token now (possibly going negative) and return how long to wait for it."""
        now = time.monotonic()
        self._refill(now)
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def give_back(self) -> None:
        self.tokens = min(self.burst, self.tokens + 1)


class RateLimited(Exception):
    """Waiting for a token would take longer than allowed: try the next channel instead."""

    def __init__(self, key: str, wait_s: float) -> None:
        super().__init__(f"rate limit {key}: next slot in {wait_s:.1f}s")
        self.key = key
        self.wait_s = wait_s


class RateLimiter:
    """Waits for a token of every bucket that applies to one send."""

    def __init__(
        self, limits: Mapping[str, RateLimit], max_wait_s: float, max_recipients: int = 50_000
    ) -> None:
        self.limits = dict(limits)
        self.max_wait_s = max_wait_s
        self.max_recipients = max_recipients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, key: str, limit_name: str) -> TokenBucket | None:
        limit = self.limits.get(limit_name)
        if limit is None:
            return None
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(limit.rate, limit.burst)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_recipients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    async def acquire(self, provider: str, recipient: str) -> None:
        """Wait until both the provider's and the recipient's bucket allow one send."""
        buckets = [
            b
            for b in (
                self._bucket(provider, provider),
                self._bucket(f"{provider}:{recipient}", f"{provider}:recipient"),
            )
            if b is not None
        ]
        waits = [b.reserve() for b in buckets]
        wait = max(waits, default=0.0)
        if wait > self.max_wait_s:
            for b in buckets:
                b.give_back()
            raise RateLimited(provider, wait)
        if wait > 0:
            await asyncio.sleep(wait)
