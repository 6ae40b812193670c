"""What the studios cost the owner this period: a read-only query over the quota ledger, for /owner.

Each server's credits count in its own current period (its admins may have chosen daily, weekly or monthly);
DMs are guild key 0. Credits held by running jobs count: the owner pays for them unless they are refunded.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass

from bot.quotas.periods import period_bounds
from bot.quotas.policy import QuotaPolicy
from bot.quotas.state import DM_KEY, load_guild_settings
from bot.storage.database import Database

# Reservations of one server's period that were committed or are still held (refunded ones cost nothing).
_SPEND_SQL = """
SELECT r.feature,
       COALESCE(SUM(CASE WHEN s.kind = 'commit' THEN -(r.allowance_delta + r.bonus_delta) END), 0),
       COALESCE(SUM(CASE WHEN s.kind IS NULL THEN -(r.allowance_delta + r.bonus_delta) END), 0)
FROM quota_ledger r
LEFT JOIN quota_ledger s ON s.job_id = r.job_id AND s.kind IN ('commit', 'refund')
WHERE r.kind = 'reserve' AND r.guild_key = ? AND r.period_start = ?
GROUP BY r.feature
"""


@dataclass(frozen=True)
class FeatureSpend:
    guild_id: int | None  # None: DMs
    feature: str
    spent: int  # finished jobs
    held: int  # jobs still running

    @property
    def credits(self) -> int:
        return self.spent + self.held


@dataclass(frozen=True)
class SpendReport:
    rows: list[FeatureSpend]

    def by_guild(self) -> dict[int | None, int]:
        totals: dict[int | None, int] = defaultdict(int)
        for row in self.rows:
            totals[row.guild_id] += row.credits
        return dict(totals)

    def by_feature(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for row in self.rows:
            totals[row.feature] += row.credits
        return dict(totals)

    @property
    def total(self) -> int:
        return sum(row.credits for row in self.rows)


def spend_in(conn: sqlite3.Connection, policy: QuotaPolicy, now: float) -> SpendReport:
    keys = [row[0] for row in conn.execute("SELECT DISTINCT guild_key FROM quota_ledger WHERE kind = 'reserve'")]
    rows = []
    for key in keys:
        settings = load_guild_settings(conn, policy, key)
        start, _end = period_bounds(now, settings.period, settings.reset_hour)
        for feature, spent, held in conn.execute(_SPEND_SQL, (key, start)):
            if spent or held:
                guild_id = None if key == DM_KEY else int(key)
                rows.append(FeatureSpend(guild_id, str(feature or "unknown"), int(spent), int(held)))
    return SpendReport(rows)


async def spend_this_period(db: Database, policy: QuotaPolicy, now: float | None = None) -> SpendReport:
    """Credits spent and held this period, per server and feature (reads only)."""
    at = time.time() if now is None else now
    return await db.read(lambda conn: spend_in(conn, policy, at))
