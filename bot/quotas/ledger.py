"""The quota ledger: reserve credits for a job, then commit or refund them exactly once.

The job engine calls the `*_in` methods inside the write transaction that creates or finishes the job, so
the job row and its credits change together. The async methods are the same thing in a transaction of
their own. Every change is an append to `quota_ledger` plus an update of the running balance it explains.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from bot.errors import BadInput
from bot.quotas import admin
from bot.quotas.balance import Balance, balance_in
from bot.quotas.errors import BudgetExhausted, InsufficientCredits, LedgerError, MemberBlocked
from bot.quotas.policy import FEATURES, Period, QuotaPolicy
from bot.quotas.reports import UsageReport, usage_csv, usage_report_in
from bot.quotas.state import guild_key, load_member_state, save_budget_spent, save_member_balance
from bot.storage.database import Database

_RESERVE_SQL = (
    "INSERT INTO quota_ledger (at, guild_key, user_id, kind, period_start, allowance_delta, bonus_delta, "
    "job_id, feature, units) VALUES (?, ?, ?, 'reserve', ?, ?, ?, ?, ?, ?)"
)
# OR IGNORE + the unique index on settlements: the second commit or refund of a job inserts nothing.
_COMMIT_SQL = (
    "INSERT OR IGNORE INTO quota_ledger (at, guild_key, user_id, kind, period_start, job_id, feature, units) "
    "SELECT ?, guild_key, user_id, 'commit', period_start, job_id, feature, units "
    "FROM quota_ledger WHERE job_id = ? AND kind = 'reserve'"
)
_REFUND_SQL = (
    "INSERT OR IGNORE INTO quota_ledger (at, guild_key, user_id, kind, period_start, allowance_delta, "
    "bonus_delta, job_id, feature, units, note) "
    "SELECT ?, guild_key, user_id, 'refund', period_start, -allowance_delta, -bonus_delta, job_id, feature, "
    "units, ? FROM quota_ledger WHERE job_id = ? AND kind = 'reserve' "
    "RETURNING guild_key, user_id, period_start, allowance_delta, bonus_delta"
)


class QuotaLedger:
    def __init__(self, db: Database, policy: QuotaPolicy | None = None, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self.policy = policy or QuotaPolicy()
        self._clock = clock

    # Reservations, composable: call inside a Database.write the caller holds.

    def reserve_in(
        self,
        conn: sqlite3.Connection,
        *,
        guild_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        feature: str,
        units: int,
        job_id: str,
    ) -> int:
        """Take the job's credits (period allowance first, then bonus); returns the credits reserved."""
        credits, _left, _period = self.reserve_and_left_in(
            conn, guild_id=guild_id, user_id=user_id, role_ids=role_ids, feature=feature, units=units, job_id=job_id
        )
        return credits

    def reserve_and_left_in(
        self,
        conn: sqlite3.Connection,
        *,
        guild_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        feature: str,
        units: int,
        job_id: str,
    ) -> tuple[int, int, Period]:
        """reserve_in, plus what the member can still spend afterwards and its period (what left_in would
        read), from the state the reservation loaded: the create path loads the member's state once."""
        if feature not in FEATURES:
            raise LedgerError(f"unknown feature {feature!r}")
        if units < 1:
            raise LedgerError(f"units must be at least 1, got {units}")
        now = self._clock()
        key = guild_key(guild_id)
        state = load_member_state(
            conn, self.policy, key=key, user_id=user_id, role_ids=role_ids, feature=feature, now=now
        )
        assert state.unit_cost is not None
        credits = state.unit_cost * units
        in_dms = guild_id is None
        if state.blocked:
            raise MemberBlocked(in_dms=in_dms)
        from_allowance = min(credits, state.allowance_left)
        from_bonus = credits - from_allowance
        if from_bonus > state.bonus:
            raise InsufficientCredits(
                needed=credits,
                available=state.allowance_left + state.bonus,
                allowance=state.allowance,
                period=state.settings.period,
                resets_at=state.period_end,
                in_dms=in_dms,
            )
        budget_left = state.budget_left
        if budget_left is not None and credits > budget_left:
            assert state.settings.budget is not None
            raise BudgetExhausted(
                needed=credits,
                left=budget_left,
                budget=state.settings.budget,
                period=state.settings.period,
                resets_at=state.period_end,
                in_dms=in_dms,
            )
        try:
            conn.execute(
                _RESERVE_SQL,
                (int(now), key, user_id, state.period_start, -from_allowance, -from_bonus, job_id, feature, units),
            )
        except sqlite3.IntegrityError as exc:
            raise LedgerError(f"job {job_id!r} already has a reservation") from exc
        save_member_balance(
            conn,
            key=key,
            user_id=user_id,
            bonus=state.bonus - from_bonus,
            period_start=state.period_start,
            used=state.used + from_allowance,
        )
        save_budget_spent(conn, key=key, period_start=state.period_start, spent=state.budget_spent + credits)
        left = max(0, state.allowance - state.used - from_allowance) + state.bonus - from_bonus
        if budget_left is not None:
            left = min(left, budget_left - credits)
        return credits, left, state.settings.period

    def left_in(
        self, conn: sqlite3.Connection, *, guild_id: int | None, user_id: int, role_ids: Sequence[int]
    ) -> tuple[int, Period]:
        """What the member can still spend, and the period it is counted in (for "19 left today")."""
        balance = balance_in(
            conn, self.policy, key=guild_key(guild_id), user_id=user_id, role_ids=role_ids, now=self._clock()
        )
        return balance.available, balance.period

    def commit_in(self, conn: sqlite3.Connection, job_id: str) -> bool:
        """The job delivered: its credits stay spent. True the first time; False if settled or unknown."""
        return conn.execute(_COMMIT_SQL, (int(self._clock()), job_id)).rowcount == 1

    def refund_in(self, conn: sqlite3.Connection, job_id: str, reason: str) -> bool:
        """Give the job's credits back where they came from, exactly once.

        False if the job was already refunded or committed, or never reserved. Credits from an allowance
        period that has since ended go back to that period, which changes nothing now.
        """
        # fetchall: run the statement to completion so nothing stays open inside the savepoint.
        rows = conn.execute(_REFUND_SQL, (int(self._clock()), reason, job_id)).fetchall()
        if not rows:
            return False
        key, user_id, period_start, allowance_delta, bonus_delta = rows[0]
        # The RETURNING values are the refund's own deltas (positive).
        conn.execute(
            "UPDATE quota_members SET bonus = bonus + ?, "
            "period_used = period_used - CASE WHEN period_start = ? THEN ? ELSE 0 END "
            "WHERE guild_key = ? AND user_id = ?",
            (bonus_delta, period_start, allowance_delta, key, user_id),
        )
        conn.execute(
            "UPDATE quota_guilds SET budget_spent = budget_spent - ? WHERE guild_key = ? AND budget_period_start = ?",
            (allowance_delta + bonus_delta, key, period_start),
        )
        return True

    # The same, each in its own transaction.

    async def reserve(
        self,
        *,
        guild_id: int | None,
        user_id: int,
        role_ids: Sequence[int],
        feature: str,
        units: int,
        job_id: str,
    ) -> int:
        return await self._db.write(
            lambda conn: self.reserve_in(
                conn,
                guild_id=guild_id,
                user_id=user_id,
                role_ids=role_ids,
                feature=feature,
                units=units,
                job_id=job_id,
            )
        )

    async def commit(self, job_id: str) -> bool:
        return await self._db.write(lambda conn: self.commit_in(conn, job_id))

    async def refund(self, job_id: str, reason: str) -> bool:
        return await self._db.write(lambda conn: self.refund_in(conn, job_id, reason))

    # What members and admins see

    async def balance(self, guild_id: int | None, user_id: int, role_ids: Sequence[int]) -> Balance:
        now = self._clock()
        return await self._db.read(
            lambda conn: balance_in(
                conn, self.policy, key=guild_key(guild_id), user_id=user_id, role_ids=role_ids, now=now
            )
        )

    async def costs(self, guild_id: int | None) -> dict[str, int]:
        """Credits per unit of every feature: the defaults merged with the server's overrides."""
        rows = await self._db.fetchall(
            "SELECT feature, credits FROM quota_costs WHERE guild_key = ?", (guild_key(guild_id),)
        )
        overrides = {row[0]: row[1] for row in rows if row[0] in FEATURES}
        return {feature: overrides.get(feature, self.policy.cost(feature)) for feature in sorted(FEATURES)}

    async def usage_report(self, guild_id: int | None) -> UsageReport:
        """Usage in the current period: per member, totals and what is left of the budget."""
        now = self._clock()
        return await self._db.read(
            lambda conn: usage_report_in(conn, self.policy, guild_id=guild_id, key=guild_key(guild_id), now=now)
        )

    async def usage_csv(self, guild_id: int | None) -> bytes:
        return usage_csv(await self.usage_report(guild_id))

    # Admin settings. guild_id None configures DMs (bot owner only), overriding the QuotaPolicy.

    async def set_default_allowance(
        self, guild_id: int | None, credits: int | None, period: Period | str | None = None
    ) -> None:
        """Credits per period for members without a role or member allowance; None: back to the default."""
        if credits is not None:
            admin.check_credits(credits, "The allowance")
        new_period = None if period is None else admin.parse_period(period)
        key = guild_key(guild_id)

        def apply(conn: sqlite3.Connection) -> None:
            admin.set_guild_column_in(conn, key, "allowance", credits)
            if new_period is not None:
                admin.set_period_in(conn, key, new_period, None)

        await self._db.write(apply)

    async def set_period(self, guild_id: int | None, period: Period | str, reset_hour: int) -> None:
        """Changing the period starts a new one at once: usage so far no longer counts against it."""
        new_period = admin.parse_period(period)
        if not 0 <= reset_hour <= 23:
            raise BadInput(f"The reset hour must be 0 to 23 (UTC), got {reset_hour}.")
        key = guild_key(guild_id)
        await self._db.write(lambda conn: admin.set_period_in(conn, key, new_period, reset_hour))

    async def set_role_allowance(self, guild_id: int | None, role_id: int, credits: int | None) -> None:
        """A member gets the best allowance among their roles; None removes the role's allowance."""
        if credits is not None:
            admin.check_credits(credits, "The allowance")
        key = guild_key(guild_id)
        await self._db.write(lambda conn: admin.set_role_allowance_in(conn, key, role_id, credits))

    async def set_member_allowance(self, guild_id: int | None, user_id: int, credits: int | None) -> None:
        """Wins over role allowances (higher or lower); None removes the override."""
        if credits is not None:
            admin.check_credits(credits, "The allowance")
        key = guild_key(guild_id)
        await self._db.write(lambda conn: admin.set_member_allowance_in(conn, key, user_id, credits))

    async def set_cost(self, guild_id: int | None, feature: str, credits: int | None) -> None:
        """Credits per unit of `feature` in this server; None: back to the default."""
        admin.check_feature(feature)
        if credits is not None:
            admin.check_credits(credits, "The cost")
        key = guild_key(guild_id)
        await self._db.write(lambda conn: admin.set_cost_in(conn, key, feature, credits))

    async def set_budget(self, guild_id: int | None, credits: int | None) -> None:
        """Caps what all members together may spend per period; None: no cap."""
        if credits is not None:
            admin.check_credits(credits, "The budget")
        key = guild_key(guild_id)
        await self._db.write(lambda conn: admin.set_guild_column_in(conn, key, "budget", credits))

    async def grant(self, guild_id: int | None, user_id: int, credits: int, by: int, note: str = "") -> int:
        """Extra credits that do not reset, spent after the period allowance; returns the new bonus."""
        admin.check_credits(credits, "The grant", positive=True)
        return await self._change_bonus(guild_id, user_id, credits, "grant", by, note)

    async def adjust(self, guild_id: int | None, user_id: int, credits: int, by: int, note: str = "") -> int:
        """Add or take away (negative) bonus credits; returns the new bonus."""
        if credits == 0:
            raise BadInput("An adjustment of 0 credits changes nothing.")
        return await self._change_bonus(guild_id, user_id, credits, "adjust", by, note)

    async def _change_bonus(
        self, guild_id: int | None, user_id: int, credits: int, kind: admin.BonusKind, by: int, note: str
    ) -> int:
        now = self._clock()
        return await self._db.write(
            lambda conn: admin.change_bonus_in(
                conn,
                self.policy,
                key=guild_key(guild_id),
                user_id=user_id,
                credits=credits,
                kind=kind,
                by=by,
                note=note,
                now=now,
            )
        )

    async def reset_member(self, guild_id: int | None, user_id: int, by: int, note: str = "") -> int:
        """Give back the allowance the member used this period; returns the credits given back."""
        now = self._clock()
        return await self._db.write(
            lambda conn: admin.reset_member_in(
                conn, self.policy, key=guild_key(guild_id), user_id=user_id, by=by, note=note, now=now
            )
        )

    async def block(self, guild_id: int | None, user_id: int, by: int, reason: str = "") -> None:
        """A blocked member can reserve nothing, whatever their allowance, roles or bonus."""
        now = self._clock()
        await self._db.write(lambda conn: admin.block_in(conn, guild_key(guild_id), user_id, by, reason, now))

    async def unblock(self, guild_id: int | None, user_id: int) -> bool:
        """True if the member was blocked."""
        return await self._db.write(lambda conn: admin.unblock_in(conn, guild_key(guild_id), user_id))

    async def erase_member(self, guild_id: int | None, user_id: int, *, everywhere: bool = False) -> int:
        """Anonymise the member's entries in this server (or DMs), or in all of them; returns the count."""
        key = None if everywhere else guild_key(guild_id)
        now = self._clock()
        return await self._db.write(lambda conn: admin.erase_member_in(conn, key, user_id, now=now))
