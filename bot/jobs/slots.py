"""Each provider's limits: request rate, parallel requests, and concurrency slots with an ordered queue."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProviderLimits:
    max_active: dict[str, int] = field(default_factory=dict)  # slot group -> jobs at the provider at once
    requests_per_minute: int | None = None
    min_poll_s: float = 3.0
    max_poll_s: float = 300.0
    parallel_requests: int = 20
    retry_base_s: float = 2.0  # first backoff step after a failed request (doubles, with jitter)
    max_per_member: int | None = None  # jobs one member may have waiting or running here at once

    def slot_limit(self, group: str | None) -> int | None:
        return self.max_active.get(group) if group is not None else None


class RateGate:
    """A token bucket: at most `per_minute` requests, spread out, shared by all jobs of one provider."""

    def __init__(self, per_minute: int | None) -> None:
        self._interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)
