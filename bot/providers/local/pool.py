"""A pool of worker processes for the local studio, driven from the event loop.

Each worker is a fresh interpreter (`python -c ... worker.main()`, i.e. spawn semantics: nothing of the
bot's process, its threads or its sockets is inherited) talking over asyncio pipes, so waiting on a worker
never blocks the loop. A job that outlives its time limit, or is cancelled, gets its worker SIGKILLed; the
worker is replaced on demand and the pool keeps serving (unlike concurrent.futures.ProcessPoolExecutor, which
breaks for good when a worker dies). Jobs beyond the workers wait in FIFO order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from bot.providers.local.common import Output, Rendered
from bot.providers.local.worker import BOOT, FRAME, THREAD_ENV

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 90.0  # importing numpy/OpenCV on a busy machine
MAX_ANSWER_BYTES = 512 * 1024 * 1024  # a worker claiming more is broken (results are at most ~50 MB)
MAX_JOBS_PER_WORKER = 100  # then a fresh process: bounds slow leaks and heap fragmentation
IDLE_RETIRE_S = 300.0  # an idle worker holds ~100 MB; it goes after this long without a job
READ_BUFFER = 2 * 1024 * 1024  # the stream pauses the pipe at twice this
CHUNK = 1024 * 1024  # large frames cross the pipe in slices of this size, one loop callback each
# The only environment a worker gets: it decodes untrusted files, so the bot's tokens and keys stay out of it.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "VIRTUAL_ENV", "LD_LIBRARY_PATH")


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


class _FileHead(BaseModel):
    filename: str
    kind: Literal["image", "file"] = "image"
    label: str | None = None
    send: bool = True
    size: int


class _Answer(BaseModel):
    """What a worker sends back: checked, since a worker handles untrusted images."""

    ok: bool
    error: Literal["render", "memory", "bug", "missing"] | None = None
    message: str | None = None
    trace: str | None = None
    text: str | None = None
    meta: dict[str, Any] = {}
    files: list[_FileHead] = []
    stats: dict[str, float | None] = {}  # the worker's own figures, e.g. peak_mb


class _Lost(Exception):
    """The pipe to the worker closed mid-job: it died."""


@dataclass(eq=False)
class _Worker:
    proc: asyncio.subprocess.Process
    jobs: int = 0
    live: set[_Worker] | None = None  # the pool's set of unreaped processes, left once reaped
    retire: asyncio.TimerHandle | None = None  # while idle

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def send(self, *frames: bytes) -> None:
        # In slices: handing a 40 MB input to the transport at once copies it twice in one loop callback.
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            for frame in frames:
                stdin.write(FRAME.pack(len(frame)))
                view = memoryview(frame)
                for start in range(0, len(view), CHUNK):
                    stdin.write(view[start : start + CHUNK])
                    await stdin.drain()
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _Lost from exc

    async def receive(self, max_size: int = MAX_ANSWER_BYTES) -> bytes:
        # In slices too: one readexactly() of 50 MB grows (and re-copies) the stream's buffer as it fills.
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            (size,) = FRAME.unpack(await stdout.readexactly(FRAME.size))
            if size > max_size:
                raise _Lost(f"the worker announced a {size}-byte frame")
            if size <= CHUNK:
                return await stdout.readexactly(size)
            parts = []
            for start in range(0, size, CHUNK):
                parts.append(await stdout.readexactly(min(CHUNK, size - start)))
            # Copying 50 MB into a fresh object costs ~100 ms of page faults: off the loop (join drops the GIL).
            return await asyncio.to_thread(b"".join, parts)
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            raise _Lost from exc

    async def kill(self) -> int:
        """SIGKILL (idempotent) and reap: no zombie is left behind."""
        if self.proc.returncode is None:
            # Not Process.kill(): Popen.send_signal() polls first, which can reap the process under asyncio's
            # child watcher; the watcher then reports exit code 255 instead of the real status.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        code = await self.proc.wait()
        if self.live is not None:
            self.live.discard(self)
        return code


@dataclass(eq=False)
class _Job:
    id: str
    ready: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    worker: _Worker | None = None
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
        self._idle: list[_Worker] = []
        self._running: dict[str, _Job] = {}  # holding a slot (starting a worker or rendering)
        self._waiting: deque[_Job] = deque()
        self._closed = False
        self._procs: set[_Worker] = set()  # started and not yet reaped
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
        return sorted(w.proc.pid for w in self._procs)

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
        worker: _Worker | None = None
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
                answer, files = await self._answer(worker)
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
        except _Lost as exc:
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

    async def _answer(self, worker: _Worker) -> tuple[_Answer, list[bytes]]:
        try:
            answer = _Answer.model_validate_json(await worker.receive(1024 * 1024))
        except ValidationError as exc:
            raise _Lost("the worker sent a malformed answer") from exc
        files = []
        budget = MAX_ANSWER_BYTES
        for head in answer.files:
            body = await worker.receive(budget)
            if len(body) != head.size:
                raise _Lost("a file's size does not match its header")
            budget -= len(body)
            files.append(body)
        return answer, files

    @staticmethod
    def _rendered(answer: _Answer, files: list[bytes]) -> Rendered:
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

    def _park(self, worker: _Worker) -> None:
        self._idle.append(worker)
        worker.retire = asyncio.get_running_loop().call_later(self.idle_s, self._retire, worker)

    def _retire(self, worker: _Worker) -> None:
        if worker in self._idle:
            self._idle.remove(worker)
            task = asyncio.get_running_loop().create_task(worker.kill())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _take_worker(self, job: _Job) -> _Worker:
        while self._idle:
            worker = self._idle.pop()  # the most recently used: the others may retire
            if worker.retire is not None:
                worker.retire.cancel()
            if worker.alive:
                job.worker = worker
                return worker
            await worker.kill()  # died while idle: reap it
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("PYTHON")}
        env.update(THREAD_ENV, EASEL_WORKER_PATH=json.dumps(sys.path), EASEL_WORKER_PARENT=str(os.getpid()))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            BOOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            limit=READ_BUFFER,
        )
        worker = job.worker = _Worker(proc, live=self._procs)  # from now on kill() and close() can stop it
        self._procs.add(worker)
        self.started_workers += 1
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_S):
                hello = json.loads(await worker.receive(4096))
        except (TimeoutError, ValueError) as exc:
            raise _Lost(f"the worker did not start: {exc!r}") from exc
        if not isinstance(hello, dict) or not hello.get("ready"):
            raise _Lost("the worker did not say it was ready")
        log.debug("Local studio worker %d started", proc.pid)
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
