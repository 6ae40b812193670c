"""Easel's own studio as a provider: jobs run to completion at submit, in the local worker pool.

Every failure is a ProviderError the engine refunds; a renderer's refusal (RenderError) reaches the member
as-is, since renderers write those messages for members. A renderer bug is left to propagate as a plain
exception, so the engine logs it with the worker's traceback like any adapter bug.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from bot.providers.base import (
    Adapter,
    ErrorKind,
    Finished,
    InputFile,
    InvalidInput,
    JobContext,
    ProviderError,
    ResultFile,
    Submitted,
)
from bot.providers.local.features import RENDERERS
from bot.providers.local.pool import (
    Cancelled,
    PoolClosed,
    RenderFailed,
    WorkerCrashed,
    WorkerOutOfMemory,
    WorkerPool,
    WorkerTimeout,
    default_workers,
)

if TYPE_CHECKING:
    import httpx

    from bot.settings import Settings

log = logging.getLogger(__name__)

SLOT_GROUP = "cpu"  # one group for every local feature: they share the same cores
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_MB = 1024
DEFAULT_DEADLINE_S = 10 * 60.0  # from creation: waiting for a free worker is included


class LocalTimedOut(ProviderError):
    kind = ErrorKind.FAILED


class LocalOutOfMemory(ProviderError):
    kind = ErrorKind.FAILED


class LocalCrashed(ProviderError):
    kind = ErrorKind.FAILED


class LocalCancelled(ProviderError):
    kind = ErrorKind.CANCELLED


class LocalAdapter(Adapter):
    name: ClassVar[str] = "local"

    def __init__(
        self,
        pool: WorkerPool,
        *,
        renderers: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        deadline_s: float = DEFAULT_DEADLINE_S,
    ) -> None:
        self.pool = pool
        self.renderers = dict(RENDERERS if renderers is None else renderers)
        self.timeout_s = timeout_s
        self.deadline_s = max(deadline_s, timeout_s + 60)

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> LocalAdapter:
        workers = pool_size(settings)
        timeout_s = settings.local_job_timeout_seconds
        memory_mb = settings.local_job_memory_mb
        log.info("Local studio: %d worker processes, %d MB and %g s per job", workers, memory_mb, timeout_s)
        return cls(WorkerPool(workers=workers, memory_mb=memory_mb), timeout_s=timeout_s)

    @property
    def workers(self) -> int:
        """How many jobs run at once: the lead sets ProviderLimits(max_active={"cpu": workers})."""
        return self.pool.workers

    def slot_group(self, feature: str) -> str | None:
        return SLOT_GROUP

    def deadline(self, feature: str) -> float:
        return self.deadline_s

    async def submit(self, job: JobContext) -> Submitted | Finished:
        target = self.renderers.get(job.feature)
        if target is None:
            raise ProviderError(f"this studio cannot do {job.feature}")
        data = await asyncio.to_thread(_image_input(job).read)
        try:
            rendered = await self.pool.run(job.id, target, data, job.params, timeout_s=self.timeout_s)
        except RenderFailed as exc:
            raise InvalidInput(exc.message) from exc
        except WorkerTimeout as exc:
            raise LocalTimedOut(f"it took longer than {exc.timeout_s:g} s and was stopped") from exc
        except WorkerOutOfMemory as exc:
            log.warning("Local job %s (%s): %s", job.id, job.feature, exc)
            raise LocalOutOfMemory("it needed more memory than this studio allows") from exc
        except WorkerCrashed as exc:
            log.warning("Local job %s (%s): %s", job.id, job.feature, exc)  # the signal is for the operator
            raise LocalCrashed("the worker rendering it stopped unexpectedly") from exc
        except (Cancelled, PoolClosed) as exc:
            raise LocalCancelled("the job was stopped before it finished") from exc
        files = [ResultFile(o.filename, data=o.data, kind=o.kind, label=o.label, send=o.send) for o in rendered.files]
        return Finished(files=files, meta=rendered.meta, text=rendered.text)

    async def cancel(self, job: JobContext) -> bool:
        return await self.pool.kill(job.id)

    def cancellable(self, feature: str) -> bool:
        return True  # the worker rendering it is killed, even mid-render

    def queue_position(self, job_id: str) -> int | None:
        """Place in the pool's own queue (1-based), 0 when rendering, None when not in the pool."""
        return self.pool.position(job_id)

    async def close(self) -> None:
        """Stop every worker; call at shutdown, after the job engine stopped."""
        await self.pool.close()


def pool_size(settings: Settings) -> int:
    """LOCAL_WORKERS, or cores - 1 when blank: also the "cpu" slot group's max_active in provider_limits()."""
    return settings.local_workers or default_workers()


def _image_input(job: JobContext) -> InputFile:
    named = [i for i in job.inputs if i.name == "image"]
    if named:
        return named[0]
    if len(job.inputs) == 1:
        return job.inputs[0]
    raise InvalidInput("this needs one image")
