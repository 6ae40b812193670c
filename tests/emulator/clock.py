"""Emulator time: a monotonic clock tests can move forward, and Discord-style snowflakes."""

from __future__ import annotations

import datetime as dt
import time

DISCORD_EPOCH_MS = 1_420_070_400_000


class Clock:
    """Real time plus an offset, so tests can jump past token lifetimes without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        self.offset += seconds

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset

    def iso_now(self) -> str:
        return dt.datetime.fromtimestamp(self.wall(), tz=dt.UTC).isoformat()


class Snowflakes:
    """Strictly increasing ids whose timestamp part follows the emulator clock (as discord.py reads it)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last = 0

    def next(self) -> int:
        candidate = (int(self._clock.wall() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last


def snowflake_time(snowflake: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, tz=dt.UTC)
