"""The one vocabulary every provider adapter speaks to the job engine.

An adapter turns a job's validated parameters into provider calls, and answers with:
- `submit(job)` -> `Submitted` (the provider's ids; check later) or `Finished` (synchronous APIs);
- `check(job)` -> `Pending` | `Finished` | `Failed`;
- `cancel(job)` where the provider can; `recover(job)` after a crash between sending a create and saving
  its answer (find the job at the provider, or say it cannot);
and raises the `ProviderError` classes below, so the engine decides retries and refunds in one place.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import httpx

    from bot.settings import Settings


class ErrorKind(StrEnum):
    INVALID_INPUT = "invalid_input"
    CONTENT_POLICY = "content_policy"
    AUTHENTICATION = "authentication"
    OUT_OF_CREDITS = "out_of_credits"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    NOT_FOUND = "not_found"
    FAILED = "failed"  # the provider ran the job and it failed
    TIMED_OUT = "timed_out"  # our deadline passed
    CANCELLED = "cancelled"
    LOST = "lost"  # we cannot know whether the provider got it (crash mid-submit): never resubmitted


# What the member is told, per kind: specific, and never the provider's raw internals.
USER_MESSAGES: dict[ErrorKind, str] = {
    ErrorKind.INVALID_INPUT: "The image service did not accept this request",
    ErrorKind.CONTENT_POLICY: "The image service refused this prompt or image under its content policy",
    ErrorKind.AUTHENTICATION: "The image service rejected Easel's API key; a server admin needs to check it",
    ErrorKind.OUT_OF_CREDITS: "The image service account has run out of credits; a server admin needs to top it up",
    ErrorKind.RATE_LIMITED: "The image service is busy and kept asking us to slow down",
    ErrorKind.TRANSIENT: "The image service is having trouble right now",
    ErrorKind.NOT_FOUND: "The image service no longer knows this job",
    ErrorKind.FAILED: "The image service could not complete this job",
    ErrorKind.TIMED_OUT: "The job took far longer than it should and was stopped",
    ErrorKind.CANCELLED: "The job was cancelled",
    ErrorKind.LOST: "Easel restarted while sending this job and cannot tell whether it arrived, so it was stopped",
}


class ProviderError(Exception):
    kind: ClassVar[ErrorKind] = ErrorKind.FAILED

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class InvalidInput(ProviderError):
    kind = ErrorKind.INVALID_INPUT


class ContentPolicy(ProviderError):
    kind = ErrorKind.CONTENT_POLICY


class AuthenticationFailed(ProviderError):
    kind = ErrorKind.AUTHENTICATION


class OutOfCredits(ProviderError):
    kind = ErrorKind.OUT_OF_CREDITS


class NotFoundAtProvider(ProviderError):
    kind = ErrorKind.NOT_FOUND


class CancelledAtProvider(ProviderError):
    """The job was stopped on a member's request while the provider (or a local worker) was running it."""

    kind = ErrorKind.CANCELLED


class RateLimited(ProviderError):
    """429: the provider refused the request before doing anything, so even a create may be retried."""

    kind = ErrorKind.RATE_LIMITED


class Transient(ProviderError):
    """5xx, timeouts, connection errors, malformed answers. `reached` says whether the provider may have
    received the request: a create that may have reached it is never sent again."""

    kind = ErrorKind.TRANSIENT

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, reached: bool = True
    ) -> None:
        super().__init__(message, status=status, retry_after=retry_after)
        self.reached = reached


RETRYABLE = (ErrorKind.RATE_LIMITED, ErrorKind.TRANSIENT)


@dataclass(frozen=True)
class InputFile:
    name: str  # the option it came from, e.g. "image"
    path: Path
    filename: str
    content_type: str
    size: int

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class JobContext:
    """What an adapter may know about a job."""

    id: str
    feature: str
    params: dict[str, Any]
    ref: dict[str, Any]  # provider ids saved after submit
    inputs: list[InputFile]
    callback_url: str | None  # where the provider should call us, or None (poll)
    attempts: int


@dataclass
class ResultFile:
    """One output: a URL to download (promptly: provider URLs expire), or bytes we already have."""

    filename: str
    url: str | None = None
    data: bytes | None = None
    kind: str = "image"  # image | video | file
    label: str | None = None
    send: bool = True  # False: kept for buttons (e.g. PBN SVG/PDF), not attached to the result message


@dataclass
class Submitted:
    ref: dict[str, Any]
    next_check: float = 5.0  # seconds until the first check
    progress: float | None = None


@dataclass
class Pending:
    progress: float | None = None  # 0..100 when the provider says
    next_check: float | None = None  # None: the engine's backoff decides
    running: bool = True  # False while the provider still has it queued
    ref: dict[str, Any] | None = None  # updated provider ids, if any


@dataclass
class Finished:
    files: list[ResultFile]
    meta: dict[str, Any] = field(default_factory=dict)  # shown in the result's details; kept in the job
    text: str | None = None  # extra text posted with the result (e.g. a palette legend)


@dataclass
class Failed:
    kind: ErrorKind
    message: str


class Adapter(abc.ABC):
    """Subclass per provider; one instance per process, sharing the runtime's httpx client."""

    name: ClassVar[str]
    # Result URLs may point at private/loopback addresses only if the provider itself lives on one.
    base_url: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> Adapter:
        raise NotImplementedError(f"{cls.__name__} cannot be built from settings")

    @abc.abstractmethod
    async def submit(self, job: JobContext) -> Submitted | Finished: ...

    async def check(self, job: JobContext) -> Pending | Finished | Failed:
        raise NotImplementedError(f"{self.name} jobs finish at submit")

    async def cancel(self, job: JobContext) -> bool:
        """Cancel at the provider; True if it stopped. Default: the provider cannot cancel."""
        return False

    def cancellable(self, feature: str) -> bool:
        """Whether `cancel` can stop a job once the provider has it. When it cannot, Easel refuses to cancel
        a job already sent: the provider would still run and bill it, so it is delivered instead."""
        return False

    async def recover(self, job: JobContext) -> Submitted | None:
        """After a crash mid-submit: find the job at the provider, or None if that cannot be known."""
        return None

    def slot_group(self, feature: str) -> str | None:
        """Jobs in the same group share the provider's concurrency limit (e.g. mimpi: concurrent models)."""
        return None

    def deadline(self, feature: str) -> float:
        """Seconds a job of this feature may take before it is stopped and refunded."""
        return 15 * 60

    def parse_callback(self, body: bytes) -> dict[str, Any]:
        """A callback is only a signal; the engine confirms with `check`. Return what it says, for logs."""
        return {}
