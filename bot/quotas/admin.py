"""Admin changes to allowances, costs, budgets, blocks and bonus credits: sync, inside a write transaction."""

from __future__ import annotations

import sqlite3
from typing import Literal

from bot.errors import BadInput
from bot.quotas.policy import FEATURES, Period, QuotaPolicy
from bot.quotas.state import load_member_state, save_member_balance

GuildColumn = Literal["allowance", "budget"]
BonusKind = Literal["grant", "adjust"]


def check_credits(credits: int, what: str, *, positive: bool = False) -> int:
    if credits < (1 if positive else 0):
        raise BadInput(f"{what} must be {'at least 1' if positive else '0 or more'} (got {credits}).")
    return credits


def check_feature(feature: str) -> str:
    if feature not in FEATURES:
        raise BadInput(f"There is no feature called `{feature}`. Features: {', '.join(sorted(FEATURES))}.")
    return feature


def parse_period(period: Period | str) -> Period:
    try:
        return Period(period)
    except ValueError:
        raise BadInput(f"The period must be one of {', '.join(p.value for p in Period)}.") from None


def set_guild_column_in(conn: sqlite3.Connection, key: int, column: GuildColumn, value: int | None) -> None:
    assert column in ("allowance", "budget")  # never a caller-supplied name
    conn.execute(
        f"INSERT INTO quota_guilds (guild_key, {column}) VALUES (?, ?) "
        f"ON CONFLICT (guild_key) DO UPDATE SET {column} = excluded.{column}",
        (key, value),
    )


def set_period_in(conn: sqlite3.Connection, key: int, period: Period, reset_hour: int | None) -> None:
    # reset_hour None keeps the current (or default) hour.
    conn.execute(
        "INSERT INTO quota_guilds (guild_key, period, reset_hour) VALUES (?, ?, ?) "
        "ON CONFLICT (guild_key) DO UPDATE SET period = excluded.period, "
        "reset_hour = COALESCE(excluded.reset_hour, reset_hour)",
        (key, period.value, reset_hour),
    )


def set_role_allowance_in(conn: sqlite3.Connection, key: int, role_id: int, credits: int | None) -> None:
    if credits is None:
        conn.execute("DELETE FROM quota_role_allowances WHERE guild_key = ? AND role_id = ?", (key, role_id))
    else:
        conn.execute(
            "INSERT INTO quota_role_allowances (guild_key, role_id, credits) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_key, role_id) DO UPDATE SET credits = excluded.credits",
            (key, role_id, credits),
        )


def set_member_allowance_in(conn: sqlite3.Connection, key: int, user_id: int, credits: int | None) -> None:
    conn.execute(
        "INSERT INTO quota_members (guild_key, user_id, allowance) VALUES (?, ?, ?) "
        "ON CONFLICT (guild_key, user_id) DO UPDATE SET allowance = excluded.allowance",
        (key, user_id, credits),
    )


def set_cost_in(conn: sqlite3.Connection, key: int, feature: str, credits: int | None) -> None:
    if credits is None:
        conn.execute("DELETE FROM quota_costs WHERE guild_key = ? AND feature = ?", (key, feature))
    else:
        conn.execute(
            "INSERT INTO quota_costs (guild_key, feature, credits) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_key, feature) DO UPDATE SET credits = excluded.credits",
            (key, feature, credits),
        )


def block_in(conn: sqlite3.Connection, key: int, user_id: int, by: int, reason: str, now: float) -> None:
    conn.execute(
        "INSERT INTO quota_members (guild_key, user_id, blocked_at, blocked_by, block_reason) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_key, user_id) DO UPDATE SET "
        "blocked_at = excluded.blocked_at, blocked_by = excluded.blocked_by, "
        "block_reason = excluded.block_reason",
        (key, user_id, int(now), by, reason),
    )


def unblock_in(conn: sqlite3.Connection, key: int, user_id: int) -> bool:
    cursor = conn.execute(
        "UPDATE quota_members SET blocked_at = NULL, blocked_by = NULL, block_reason = NULL "
        "WHERE guild_key = ? AND user_id = ? AND blocked_at IS NOT NULL",
        (key, user_id),
    )
    return cursor.rowcount == 1


def change_bonus_in(
    conn: sqlite3.Connection,
    policy: QuotaPolicy,
    *,
    key: int,
    user_id: int,
    credits: int,
    kind: BonusKind,
    by: int,
    note: str,
    now: float,
) -> int:
    """Add (or, for an adjust, take away) bonus credits; returns the member's new bonus."""
    state = load_member_state(conn, policy, key=key, user_id=user_id, role_ids=(), feature=None, now=now)
    bonus = state.bonus + credits
    if bonus < 0:
        raise BadInput(f"<@{user_id}> has only {state.bonus} bonus credits; cannot take away {-credits}.")
    conn.execute(
        "INSERT INTO quota_ledger (at, guild_key, user_id, kind, period_start, bonus_delta, by_user, note) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (int(now), key, user_id, kind, state.period_start, credits, by, note),
    )
    save_member_balance(conn, key=key, user_id=user_id, bonus=bonus, period_start=state.period_start, used=state.used)
    return bonus


_HELD_ALLOWANCE_SQL = """
SELECT COALESCE(SUM(-r.allowance_delta), 0) FROM quota_ledger r
WHERE r.guild_key = ? AND r.period_start = ? AND r.user_id = ? AND r.kind = 'reserve'
  AND NOT EXISTS (SELECT 1 FROM quota_ledger s WHERE s.job_id = r.job_id AND s.kind IN ('commit', 'refund'))
"""


def reset_member_in(
    conn: sqlite3.Connection, policy: QuotaPolicy, *, key: int, user_id: int, by: int, note: str, now: float
) -> int:
    """Give back the allowance the member used this period; returns the credits given back.

    Credits held by running jobs stay used: their refund gives them back, so they are never returned twice.
    """
    state = load_member_state(conn, policy, key=key, user_id=user_id, role_ids=(), feature=None, now=now)
    (held,) = conn.execute(_HELD_ALLOWANCE_SQL, (key, state.period_start, user_id)).fetchone()
    restored = int(state.used - held)
    if restored <= 0:
        return 0
    conn.execute(
        "INSERT INTO quota_ledger (at, guild_key, user_id, kind, period_start, allowance_delta, by_user, "
        "note) VALUES (?, ?, ?, 'reset', ?, ?, ?, ?)",
        (int(now), key, user_id, state.period_start, restored, by, note),
    )
    save_member_balance(conn, key=key, user_id=user_id, bonus=state.bonus, period_start=state.period_start, used=held)
    return restored


_UNSETTLED = (
    "kind = 'reserve' AND NOT EXISTS (SELECT 1 FROM quota_ledger s WHERE s.job_id = quota_ledger.job_id "
    "AND s.kind IN ('commit', 'refund'))"
)


def erase_member_in(conn: sqlite3.Connection, key: int | None, user_id: int, *, now: float) -> int:
    """Anonymise the member's ledger history (key None: everywhere); returns how many entries changed.

    Erasing personal data must not refill credits, so what the quota needs stays, without the history:
    - every entry loses the member's id and its notes, except reservations still open (their refund or
      commit must still reach the member's balance);
    - one 'adjust' entry per server carries the member's balance forward (bonus left, allowance used this
      period), so the running balance still re-derives from the entries;
    - the member's row stays: an admin's "0 credits for this member", a grant or a block survives.
    """
    in_guild = "" if key is None else " AND guild_key = :key"
    params: dict[str, object] = {"user": user_id, "key": key}
    members = conn.execute(
        f"SELECT guild_key, period_start, period_used, bonus FROM quota_members WHERE user_id = :user{in_guild}",
        params,
    ).fetchall()
    changed = conn.execute(
        f"UPDATE quota_ledger SET user_id = NULL, note = NULL WHERE user_id = :user AND NOT ({_UNSETTLED}){in_guild}",
        params,
    ).rowcount
    changed += conn.execute(
        f"UPDATE quota_ledger SET by_user = NULL, note = NULL WHERE by_user = :user{in_guild}", params
    ).rowcount
    for guild, period_start, used, bonus in members:
        held_used, held_bonus = conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN period_start = ? THEN -allowance_delta ELSE 0 END), 0), "
            f"COALESCE(SUM(bonus_delta), 0) FROM quota_ledger WHERE guild_key = ? AND user_id = ? AND {_UNSETTLED}",
            (period_start, guild, user_id),
        ).fetchone()
        carried_used, carried_bonus = int(used) - int(held_used), int(bonus) - int(held_bonus)
        if carried_used or carried_bonus:
            conn.execute(
                "INSERT INTO quota_ledger (at, guild_key, user_id, kind, period_start, allowance_delta, bonus_delta) "
                "VALUES (?, ?, ?, 'adjust', ?, ?, ?)",
                (int(now), guild, user_id, period_start, -carried_used, carried_bonus),
            )
    conn.execute(f"UPDATE quota_members SET blocked_by = NULL WHERE blocked_by = :user{in_guild}", params)
    return int(changed)
