"""Per-member usage of a server in the current period, for admins (as rows or CSV)."""

from __future__ import annotations

import csv
import io
import sqlite3
from dataclasses import dataclass

from bot.quotas.periods import period_bounds
from bot.quotas.policy import Period, QuotaPolicy
from bot.quotas.state import load_guild_settings


@dataclass(frozen=True)
class UsageRow:
    user_id: int | None  # None: members who erased their data
    spent: int  # credits of finished jobs
    reserved: int  # credits held by jobs still running
    refunded: int
    granted: int  # bonus credits granted this period
    jobs: int


@dataclass(frozen=True)
class UsageReport:
    guild_id: int | None
    period: Period
    period_start: int
    resets_at: int
    rows: list[UsageRow]  # most spent first
    total: UsageRow  # user_id None
    budget: int | None
    budget_left: int | None

    @property
    def budget_used(self) -> int:
        # Held credits count: the server pays for them unless the job is refunded.
        return self.total.spent + self.total.reserved


# Settlements are attributed to the period of their reservation, so a job that finishes after the reset
# still counts where its credits were taken.
_USAGE_SQL = """
SELECT r.user_id,
       COALESCE(SUM(CASE WHEN s.kind = 'commit' THEN -(r.allowance_delta + r.bonus_delta) END), 0) AS spent,
       COALESCE(SUM(CASE WHEN r.kind = 'reserve' AND s.kind IS NULL
                         THEN -(r.allowance_delta + r.bonus_delta) END), 0) AS reserved,
       COALESCE(SUM(CASE WHEN s.kind = 'refund' THEN -(r.allowance_delta + r.bonus_delta) END), 0),
       COALESCE(SUM(CASE WHEN r.kind = 'grant' THEN r.bonus_delta END), 0),
       SUM(r.kind = 'reserve')
FROM quota_ledger r
LEFT JOIN quota_ledger s ON r.kind = 'reserve' AND s.job_id = r.job_id AND s.kind IN ('commit', 'refund')
WHERE r.guild_key = ? AND r.period_start = ? AND r.kind IN ('reserve', 'grant')
GROUP BY r.user_id
ORDER BY spent + reserved DESC, r.user_id
"""


def usage_report_in(
    conn: sqlite3.Connection, policy: QuotaPolicy, *, guild_id: int | None, key: int, now: float
) -> UsageReport:
    settings = load_guild_settings(conn, policy, key)
    start, end = period_bounds(now, settings.period, settings.reset_hour)
    rows = [UsageRow(*row) for row in conn.execute(_USAGE_SQL, (key, start))]
    total = UsageRow(
        user_id=None,
        spent=sum(r.spent for r in rows),
        reserved=sum(r.reserved for r in rows),
        refunded=sum(r.refunded for r in rows),
        granted=sum(r.granted for r in rows),
        jobs=sum(r.jobs for r in rows),
    )
    budget = settings.budget
    return UsageReport(
        guild_id=guild_id,
        period=settings.period,
        period_start=start,
        resets_at=end,
        rows=rows,
        total=total,
        budget=budget,
        budget_left=None if budget is None else max(0, budget - total.spent - total.reserved),
    )


CSV_COLUMNS = ("user_id", "spent", "reserved", "refunded", "granted", "jobs")


def usage_csv(report: UsageReport) -> bytes:
    """One line per member ("erased" for anonymised entries), then a "total" line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in [*report.rows, report.total]:
        who = "total" if row is report.total else ("erased" if row.user_id is None else str(row.user_id))
        writer.writerow([who, row.spent, row.reserved, row.refunded, row.granted, row.jobs])
    return out.getvalue().encode("utf-8")
