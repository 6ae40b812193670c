"""A pool of worker processes for the local studio, driven from the event loop.

Each worker is a fresh interpreter (`python -c ... worker.main()`, i.e. spawn semantics: nothing of the
bot's process, its threads or its sockets is inherited) talking over asyncio pipes (process.py), so waiting
on a worker never blocks the loop. A job that outlives its time limit, or is cancelled, gets its worker
SIGKILLed; the worker is replaced on demand and the pool keeps serving (unlike ProcessPoolExecutor, which
breaks for good when a worker dies). Jobs beyond the workers wait in FIFO order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bot.providers.local.common import Output, Rendered
from bot.providers.local.process import Answer, Lost, WorkerProcess

log = logging.getLogger(__name__)

MAX_JOBS_PER_WORKER = 100  # then a fresh process: bounds slow leaks and heap fragmentation
IDLE_RETIRE_S = 300.0  # an idle worker holds ~60-100 MB; it goes after this long without a job


def default_workers() -> int:
    """Cores this process may use, minus one for the bot itself; at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


class PoolError(Exception):
    """A job did not produce a result; subclasses say why."""


class WorkerTimeout(PoolError):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the job took longer than {timeout_s:g} s and its worker was killed")
        self.timeout_s = timeout_s


class WorkerCrashed(PoolError):
    def __init__(self, returncode: int | None, detail: str | None = None) -> None:
        self.returncode = returncode
        self.signal: int | None = -returncode if returncode is not None and returncode < 0 else None
        if detail is not None:  # it broke the protocol; we killed it
            how = detail
        elif self.signal is not None:
            how = f"was killed by {signal.Signals(self.signal).name}"
            if self.signal == signal.SIGKILL:
                how += " (perhaps by the system, out of memory)"
        else:
            how = f"exited with code {returncode}"
        super().__init__(f"the worker process {how}")


class WorkerOutOfMemory(PoolError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"the job needed more memory than its cap ({detail})")


class RenderFailed(PoolError):
    """The renderer refused the input (a RenderError); `message` is fit for the member."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RendererBug(PoolError):
    """The renderer raised something unexpected: a bug, with the worker's traceback."""

    def __init__(self, message: str, trace: str | None) -> None:
        super().__init__(message + (f"\n--- in the worker ---\n{trace}" if trace else ""))


class Cancelled(PoolError):
    def __init__(self) -> None:
        super().__init__("the job was cancelled")


class PoolClosed(PoolError):
    def __init__(self) -> None:
        super().__init__("the worker pool is closed")


@dataclass(eq=False)
class _Job:
    id: str
    ready: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    worker: WorkerProcess | None = None
    cancelled: bool = False


class WorkerPool:
    """Runs `target(data, params) -> Rendered` in worker processes; see the module's docstring."""

    def __init__(self, *, workers: int | None = None, memory_mb: int = 1024, idle_s: float = IDLE_RETIRE_S) -> None:
        self.workers = workers if workers is not None else default_workers()
        if self.workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.memory_mb = memory_mb
        self.idle_s = idle_s
        self._retiring: set[asyncio.Task[int]] = set()
        self._idle: list[WorkerProcess] = []
        self._running: dict[str, _Job] = {}  # holding a slot (starting a worker or rendering)
        self._waiting: deque[_Job] = deque()
        self._closed = False
        self._procs: set[WorkerProcess] = set()  # started and not yet reaped
        self.started_workers = 0  # processes started so far (replacements included)

    @property
    def active(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def position(self, job_id: str) -> int | None:
        """1-based place of a waiting job in the queue, 0 if running, None if unknown."""
        if job_id in self._running:
            return 0
        for index, job in enumerate(self._waiting):
            if job.id == job_id:
                return index + 1
        return None

    def worker_pids(self) -> list[int]:
        return sorted(w.pid for w in self._procs)

    async def run(self, job_id: str, target: str, data: bytes, params: dict[str, Any], *, timeout_s: float) -> Rendered:
        """Render in a worker. Raises WorkerTimeout, WorkerCrashed, WorkerOutOfMemory, RenderFailed,
        RendererBug, Cancelled (kill()) or PoolClosed."""
        if self._closed:
            raise PoolClosed
        if job_id in self._running or any(j.id == job_id for j in self._waiting):
            raise ValueError(f"job {job_id} is already in the pool")
        job = _Job(job_id)
        if len(self._running) < self.workers and not self._waiting:
            self._running[job_id] = job
        else:
            self._waiting.append(job)
            try:
                await job.ready  # _release hands over its slot (FIFO), or kill()/close() fail it
            except BaseException:
                if job.ready.done() and not job.ready.cancelled() and job.ready.exception() is None:
                    self._release(job)  # got the slot just as this task was cancelled: pass it on
                elif job in self._waiting:
                    self._waiting.remove(job)
                raise
        try:
            return await self._render(job, target, data, params, timeout_s)
        finally:
            self._release(job)

    async def _render(self, job: _Job, target: str, data: bytes, params: dict[str, Any], timeout_s: float) -> Rendered:
        worker: WorkerProcess | None = None
        reusable = False  # True once a whole answer was read: only then may the worker serve again
        try:
            worker = await self._take_worker(job)
            if job.cancelled or self._closed:
                reusable = True
                raise Cancelled
            header = {"target": target, "params": params, "memory_mb": self.memory_mb, "cpu_s": timeout_s * 2 + 10}
            started = time.monotonic()
            async with asyncio.timeout(timeout_s):
                await worker.send(json.dumps(header).encode(), data)
                answer, files = await worker.answer()
            worker.jobs += 1
            peak = answer.stats.get("peak_mb")
            # For tuning LOCAL_JOB_MEMORY_MB and LOCAL_JOB_TIMEOUT_SECONDS from real jobs.
            log.info(
                "Local job %s: %s in %.2f s, peak memory %s",
                job.id,
                answer.error or "done",
                time.monotonic() - started,
                f"{peak:.0f} MB" if peak is not None else "unknown",
            )
            reusable = answer.error not in ("memory", "bug") and worker.jobs < MAX_JOBS_PER_WORKER
        except TimeoutError:
            raise WorkerTimeout(timeout_s) from None
        except Lost as exc:
            code = await worker.kill() if worker is not None else None
            if job.cancelled or self._closed:
                raise (Cancelled() if job.cancelled else PoolClosed()) from None
            raise WorkerCrashed(code, str(exc) or None) from None
        finally:
            job.worker = None
            if worker is not None:
                if reusable and not self._closed and worker.alive:
                    self._park(worker)
                else:
                    await worker.kill()
        return self._rendered(answer, files)

    @staticmethod
    def _rendered(answer: Answer, files: list[bytes]) -> Rendered:
        if answer.error == "render":
            raise RenderFailed(answer.message or "this image cannot be rendered")
        if answer.error == "memory":
            raise WorkerOutOfMemory(answer.message or "MemoryError")
        if answer.error in ("bug", "missing") or not answer.ok:
            raise RendererBug(answer.message or "unknown error", answer.trace)
        outputs = [
            Output(h.filename, data, kind=h.kind, label=h.label, send=h.send)
            for h, data in zip(answer.files, files, strict=True)
        ]
        return Rendered(outputs, text=answer.text, meta=answer.meta)

    def _park(self, worker: WorkerProcess) -> None:
        self._idle.append(worker)
        worker.retire = asyncio.get_running_loop().call_later(self.idle_s, self._retire, worker)

    def _retire(self, worker: WorkerProcess) -> None:
        if worker in self._idle:
            self._idle.remove(worker)
            task = asyncio.get_running_loop().create_task(worker.kill())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _take_worker(self, job: _Job) -> WorkerProcess:
        while self._idle:
            worker = self._idle.pop()  # the most recently used: the others may retire
            if worker.retire is not None:
                worker.retire.cancel()
            if worker.alive:
                job.worker = worker
                return worker
            await worker.kill()  # died while idle: reap it
        worker = job.worker = await WorkerProcess.spawn(self._procs)  # from now on kill() and close() can stop it
        self.started_workers += 1
        await worker.handshake()
        log.debug("Local studio worker %d started", worker.pid)
        return worker

    def _release(self, job: _Job) -> None:
        """The job's slot goes straight to the oldest waiting job (FIFO), or back to the pool."""
        if self._running.pop(job.id, None) is None:
            return
        while self._waiting:
            nxt = self._waiting.popleft()
            if not nxt.ready.done():
                self._running[nxt.id] = nxt
                nxt.ready.set_result(None)
                return

    async def kill(self, job_id: str) -> bool:
        """Stop a job now: a waiting one leaves the queue, a running one's worker is SIGKILLed. Its run()
        raises Cancelled. False if the pool does not know the job."""
        for job in self._waiting:
            if job.id == job_id:
                self._waiting.remove(job)
                job.cancelled = True
                if not job.ready.done():
                    job.ready.set_exception(Cancelled())
                return True
        running = self._running.get(job_id)
        if running is None:
            return False
        running.cancelled = True
        if running.worker is not None:
            await running.worker.kill()
        return True

    async def close(self) -> None:
        """Kill every worker, fail every waiting job with PoolClosed, and reap all processes."""
        self._closed = True
        while self._waiting:
            job = self._waiting.popleft()
            if not job.ready.done():
                job.ready.set_exception(PoolClosed())
        for worker in self._idle:
            if worker.retire is not None:
                worker.retire.cancel()
        self._idle = []
        # Every process ever started and not yet reaped, including one still starting up.
        await asyncio.gather(*(w.kill() for w in list(self._procs)), *self._retiring)
