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


def status_line(job: Job, now: float, *, position: int | None = None) -> str:
    name = f"job `{job.id}`"
    if job.status is JobStatus.QUEUED:
        where = f" — position {position} in the queue" if position else ""
        return f"⏳ Queued{where}. I'll post the result here ({name})."
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
