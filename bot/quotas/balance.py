"""A member's balance as shown to them: what they get, what they used, what is left and when it resets."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from bot.quotas.policy import Period, QuotaPolicy
from bot.quotas.state import load_member_state


@dataclass(frozen=True)
class Balance:
    allowance: int  # credits per period
    allowance_left: int  # of this period's allowance
    spent: int  # credits of finished jobs this period (allowance and bonus)
    reserved: int  # credits held by jobs still running this period
    bonus: int  # granted credits left; they do not reset
    available: int  # what the member can spend now: allowance left + bonus, capped by the server budget
    period: Period
    resets_at: int  # Unix seconds
    blocked: bool
    budget_left: int | None  # the server's (or DMs') shared budget left this period; None: no budget


_SETTLED_SQL = """
SELECT COALESCE(SUM(CASE WHEN s.kind = 'commit' THEN -(r.allowance_delta + r.bonus_delta) END), 0),
       COALESCE(SUM(CASE WHEN s.kind IS NULL THEN -(r.allowance_delta + r.bonus_delta) END), 0)
FROM quota_ledger r
LEFT JOIN quota_ledger s ON s.job_id = r.job_id AND s.kind IN ('commit', 'refund')
WHERE r.guild_key = ? AND r.period_start = ? AND r.user_id = ? AND r.kind = 'reserve'
"""


def balance_in(
    conn: sqlite3.Connection,
    policy: QuotaPolicy,
    *,
    key: int,
    user_id: int,
    role_ids: Sequence[int],
    now: float,
) -> Balance:
    state = load_member_state(conn, policy, key=key, user_id=user_id, role_ids=role_ids, feature=None, now=now)
    spent, reserved = conn.execute(_SETTLED_SQL, (key, state.period_start, user_id)).fetchone()
    if state.blocked:
        available = 0
    else:
        available = state.allowance_left + state.bonus
        if state.budget_left is not None:
            available = min(available, state.budget_left)
    return Balance(
        allowance=0 if state.blocked else state.allowance,
        allowance_left=0 if state.blocked else state.allowance_left,
        spent=spent,
        reserved=reserved,
        bonus=state.bonus,
        available=available,
        period=state.settings.period,
        resets_at=state.period_end,
        blocked=state.blocked,
        budget_left=state.budget_left,
    )
