"""The status line of a job: position in the queue, percent, a bar, and an ETA as a Discord timestamp."""

from __future__ import annotations

from bot.jobs.model import Job, JobStatus

BAR_CELLS = 10


def bar(percent: float) -> str:
    filled = max(0, min(BAR_CELLS, round(percent / 100 * BAR_CELLS)))
    return "▓" * filled + "░" * (BAR_CELLS - filled)


def eta(job: Job, now: float, started_at: float | None) -> float | None:
    """Linear estimate from progress so far; None until there is something to go on."""
    if job.progress is None or job.progress <= 2 or job.progress >= 100 or started_at is None:
        return None
    elapsed = now - started_at
    return now + elapsed * (100 - job.progress) / job.progress


PERIOD_WORDS = {"daily": "today", "weekly": "this week", "monthly": "this month"}


def credits(n: int) -> str:
    return f"{n} credit{'s' if n != 1 else ''}"


def price_text(spent: int, left: int | None, period: str | None) -> str:
    """ "1 credit · 19 left today", or "free" when nothing was reserved."""
    head = credits(spent) if spent else "free"
    if left is None:
        return head
    return f"{head} · {left} left {PERIOD_WORDS.get(period or '', '')}".rstrip()


def status_line(job: Job, now: float, *, position: int | None = None, price: str | None = None) -> str:
    name = f"job `{job.id}`"
    if job.status is JobStatus.QUEUED:
        where = f" — position {position} in the queue" if position else ""
        cost = f" · {price}" if price else ""
        return f"⏳ Queued{where}. I'll post the result here ({name}{cost})."
    if job.status is JobStatus.FETCHING:
        return f"📥 Done at the image service; fetching the result ({name})."
    if job.status in (JobStatus.SUBMITTING, JobStatus.SUBMITTED):
        return f"📨 Sent to the image service; waiting for it to start ({name})."
    if job.status is JobStatus.RUNNING:
        line = "🎨 Working"
        if job.progress is not None:
            line += f" — {job.progress:.0f}% {bar(job.progress)}"
        estimate = eta(job, now, job.started_at)
        if estimate is not None:
            line += f" — done <t:{int(estimate)}:R>"
        return f"{line} ({name})."
    return f"Job `{job.id}`: {job.status.value}."
