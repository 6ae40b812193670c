"""Per-member credit quotas: costs, allowances, grants, blocks, server budgets and the ledger behind them."""

from bot.quotas.balance import Balance
from bot.quotas.errors import BudgetExhausted, InsufficientCredits, LedgerError, MemberBlocked
from bot.quotas.ledger import QuotaLedger
from bot.quotas.policy import DEFAULT_COSTS, FEATURES, Period, QuotaPolicy
from bot.quotas.reports import UsageReport, UsageRow

__all__ = [
    "DEFAULT_COSTS",
    "FEATURES",
    "Balance",
    "BudgetExhausted",
    "InsufficientCredits",
    "LedgerError",
    "MemberBlocked",
    "Period",
    "QuotaLedger",
    "QuotaPolicy",
    "UsageReport",
    "UsageRow",
]
