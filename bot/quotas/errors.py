"""Why a reservation was refused, worded for the member; plus LedgerError for callers' bugs."""

from __future__ import annotations

from bot.errors import NotAllowed
from bot.quotas.policy import Period


class LedgerError(Exception):
    """A programming error in the caller (unknown feature, a job id reserved twice): not for members."""


def _when(unix: int) -> str:
    return f"<t:{unix}:R>"


class InsufficientCredits(NotAllowed):
    def __init__(
        self, *, needed: int, available: int, allowance: int, period: Period, resets_at: int, in_dms: bool
    ) -> None:
        self.needed = needed
        self.available = available
        self.allowance = allowance
        self.period = period
        self.resets_at = resets_at
        message = f"Not enough credits: this needs **{needed}** and you have **{available}** left."
        if needed > allowance:
            # Waiting for the reset will not help: say so rather than send them back tomorrow.
            message += f" That is more than your allowance of **{allowance}** per {period.noun}"
            message += "." if in_dms else "; a server admin can grant you extra credits."
        else:
            message += f" Your credits reset {_when(resets_at)}."
        super().__init__(message)


class MemberBlocked(NotAllowed):
    def __init__(self, *, in_dms: bool) -> None:
        where = "in DMs" if in_dms else "in this server"
        super().__init__(f"You have been blocked from using Easel's paid features {where}.")


class BudgetExhausted(NotAllowed):
    def __init__(self, *, needed: int, left: int, budget: int, period: Period, resets_at: int, in_dms: bool) -> None:
        self.needed = needed
        self.left = left
        self.budget = budget
        self.resets_at = resets_at
        whose = "Easel's shared budget for DMs" if in_dms else "This server's shared budget"
        super().__init__(
            f"{whose} for this {period.noun} is used up: this needs **{needed}** credits and only "
            f"**{left}** of **{budget}** are left for everyone. It refills {_when(resets_at)}."
        )
