"""Wake-up signal for test-side waits: waiters re-check their predicate only when state changed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Signal:
    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_until(
        self, check: Callable[[], T | None], *, within: float, what: str, poll: float | None = None
    ) -> T:
        """Return the first non-None result of `check`, re-evaluated after every notify() and, with `poll`,
        at least every `poll` seconds (for predicates over state the emulator does not own)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            result = check()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"emulator: timed out after {within}s waiting for {what}")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining if poll is None else min(remaining, poll))
            except TimeoutError:
                continue  # one last check above, then the deadline check raises
