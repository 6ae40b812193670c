"""What a style training has already done at Flair, so a retried or recovered submit never repeats a step.

Uploads are free but must not be duplicated (a doubled image skews the training); the training start is
paid and is sent at most once. Before sending it, the trainings the model already had are recorded, so
after a crash the new one can be told apart in the model's training list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StartState:
    sent: bool = False  # a start request may have reached Flair
    training_id: str | None = None  # its answer, when it was seen
    earlier: tuple[str, ...] = ()  # the model's training ids just before the start was sent


class UploadLog(Protocol):
    async def uploaded(self, job_id: str) -> dict[str, str]:
        """Images already uploaded for this job: input key -> Flair data id."""
        ...

    async def record_upload(self, job_id: str, key: str, data_id: str) -> None: ...

    async def start_state(self, job_id: str) -> StartState: ...

    async def set_start_sent(self, job_id: str, sent: bool, earlier: tuple[str, ...] = ()) -> None:
        """Before the start is sent (sent=True, with the earlier ids), or after Flair refused it (False)."""
        ...

    async def record_training(self, job_id: str, training_id: str) -> None: ...


class MemoryUploadLog:
    """Good for one process and for tests; the bot installs a database-backed one."""

    def __init__(self) -> None:
        self._uploads: dict[str, dict[str, str]] = {}
        self._starts: dict[str, StartState] = {}

    async def uploaded(self, job_id: str) -> dict[str, str]:
        return dict(self._uploads.get(job_id, {}))

    async def record_upload(self, job_id: str, key: str, data_id: str) -> None:
        self._uploads.setdefault(job_id, {})[key] = data_id

    async def start_state(self, job_id: str) -> StartState:
        return self._starts.get(job_id, StartState())

    async def set_start_sent(self, job_id: str, sent: bool, earlier: tuple[str, ...] = ()) -> None:
        self._starts[job_id] = StartState(sent=sent, earlier=tuple(earlier))

    async def record_training(self, job_id: str, training_id: str) -> None:
        previous = self._starts.get(job_id, StartState())
        self._starts[job_id] = StartState(sent=True, training_id=training_id, earlier=previous.earlier)
