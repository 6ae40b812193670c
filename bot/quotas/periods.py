"""Allowance periods: when the current one started and when it resets (UTC, at a configured hour)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.quotas.policy import Period


def period_bounds(now: float, period: Period, reset_hour: int) -> tuple[int, int]:
    """(start, end) of the period containing `now`, as Unix seconds; `end` is the next reset."""
    moment = datetime.fromtimestamp(now, UTC)
    if period is Period.DAILY:
        start = _at_hour(moment, reset_hour)
        if start > moment:
            start -= timedelta(days=1)
        end = start + timedelta(days=1)
    elif period is Period.WEEKLY:
        start = _at_hour(moment - timedelta(days=moment.weekday()), reset_hour)
        if start > moment:
            start -= timedelta(days=7)
        end = start + timedelta(days=7)
    else:
        start = _at_hour(moment.replace(day=1), reset_hour)
        if start > moment:
            start = _add_months(start, -1)
        end = _add_months(start, 1)
    return int(start.timestamp()), int(end.timestamp())


def _add_months(first_of_month: datetime, months: int) -> datetime:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return first_of_month.replace(year=index // 12, month=index % 12 + 1)


def _at_hour(day: datetime, hour: int) -> datetime:
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)
