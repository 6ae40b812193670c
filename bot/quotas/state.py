"""Everything a reservation or a balance needs about one member, read in one statement."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from bot.quotas.periods import period_bounds
from bot.quotas.policy import Period, QuotaPolicy

DM_KEY = 0  # guild_key of DMs: Discord never issues id 0


def guild_key(guild_id: int | None) -> int:
    return DM_KEY if guild_id is None else guild_id


@dataclass(frozen=True)
class GuildSettings:
    allowance: int
    period: Period
    reset_hour: int
    budget: int | None


@dataclass(frozen=True)
class MemberState:
    settings: GuildSettings
    allowance: int  # resolved: override, else best role, else server default
    blocked: bool
    bonus: int
    used: int  # allowance credits used in the current period, held reservations included
    period_start: int
    period_end: int
    budget_spent: int  # by all members in the current period
    unit_cost: int | None  # of the feature asked for, None if none was

    @property
    def allowance_left(self) -> int:
        return max(0, self.allowance - self.used)

    @property
    def budget_left(self) -> int | None:
        budget = self.settings.budget
        return None if budget is None else max(0, budget - self.budget_spent)


# One round trip for the hot path: server settings and spend, the feature's override, the member's row and
# the best allowance among the roles they hold (role ids passed as a JSON array keep the SQL text fixed).
_STATE_SQL = """
SELECT g.allowance, g.period, g.reset_hour, g.budget, g.budget_period_start, g.budget_spent,
       c.credits,
       m.allowance, m.blocked_at, m.bonus, m.period_start, m.period_used,
       (SELECT MAX(r.credits) FROM quota_role_allowances r
         WHERE r.guild_key = k.key AND r.role_id IN (SELECT value FROM json_each(:roles)))
FROM (SELECT :key AS key) k
LEFT JOIN quota_guilds g ON g.guild_key = k.key
LEFT JOIN quota_costs c ON c.guild_key = k.key AND c.feature = :feature
LEFT JOIN quota_members m ON m.guild_key = k.key AND m.user_id = :user
"""


def resolve_settings(
    policy: QuotaPolicy,
    key: int,
    allowance: int | None,
    period: str | None,
    reset_hour: int | None,
    budget: int | None,
) -> GuildSettings:
    if key == DM_KEY:
        return GuildSettings(
            allowance=policy.dm_allowance if allowance is None else allowance,
            period=Period(period) if period else policy.dm_period,
            reset_hour=policy.dm_reset_hour if reset_hour is None else reset_hour,
            budget=policy.dm_budget if budget is None else budget,
        )
    return GuildSettings(
        allowance=policy.server_allowance if allowance is None else allowance,
        period=Period(period) if period else policy.server_period,
        reset_hour=policy.server_reset_hour if reset_hour is None else reset_hour,
        budget=budget,
    )


def load_guild_settings(conn: sqlite3.Connection, policy: QuotaPolicy, key: int) -> GuildSettings:
    row = conn.execute(
        "SELECT allowance, period, reset_hour, budget FROM quota_guilds WHERE guild_key = ?", (key,)
    ).fetchone()
    if row is None:
        return resolve_settings(policy, key, None, None, None, None)
    return resolve_settings(policy, key, row[0], row[1], row[2], row[3])


def load_member_state(
    conn: sqlite3.Connection,
    policy: QuotaPolicy,
    *,
    key: int,
    user_id: int,
    role_ids: Sequence[int],
    feature: str | None,
    now: float,
) -> MemberState:
    row = conn.execute(
        _STATE_SQL,
        {"key": key, "user": user_id, "feature": feature, "roles": json.dumps([int(r) for r in role_ids])},
    ).fetchone()
    (
        g_allowance,
        g_period,
        g_hour,
        g_budget,
        budget_start,
        budget_spent,
        cost,
        m_allowance,
        blocked_at,
        bonus,
        m_start,
        m_used,
        role_allowance,
    ) = tuple(row)
    settings = resolve_settings(policy, key, g_allowance, g_period, g_hour, g_budget)
    start, end = period_bounds(now, settings.period, settings.reset_hour)
    if m_allowance is not None:
        allowance = m_allowance
    elif role_allowance is not None:
        allowance = role_allowance
    else:
        allowance = settings.allowance
    return MemberState(
        settings=settings,
        allowance=allowance,
        blocked=blocked_at is not None,
        bonus=bonus or 0,
        # A row from an earlier period means nothing was used in this one yet: that is the reset.
        used=m_used if m_start == start else 0,
        period_start=start,
        period_end=end,
        budget_spent=budget_spent if budget_start == start else 0,
        unit_cost=None if feature is None else (policy.cost(feature) if cost is None else cost),
    )


def save_member_balance(
    conn: sqlite3.Connection, *, key: int, user_id: int, bonus: int, period_start: int, used: int
) -> None:
    """Write the member's running balance (after the ledger entry that explains it)."""
    conn.execute(
        "INSERT INTO quota_members (guild_key, user_id, bonus, period_start, period_used) "
        "VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (guild_key, user_id) DO UPDATE SET bonus = excluded.bonus, "
        "period_start = excluded.period_start, period_used = excluded.period_used",
        (key, user_id, bonus, period_start, used),
    )


def save_budget_spent(conn: sqlite3.Connection, *, key: int, period_start: int, spent: int) -> None:
    conn.execute(
        "INSERT INTO quota_guilds (guild_key, budget_period_start, budget_spent) VALUES (?, ?, ?) "
        "ON CONFLICT (guild_key) DO UPDATE SET budget_period_start = excluded.budget_period_start, "
        "budget_spent = excluded.budget_spent",
        (key, period_start, spent),
    )
