"""One task that wakes for the next due job: no sleeping task per job, no polling of jobs not yet due.

The heap is only an index: every due time that matters after a restart is derivable from the database
(recovery reschedules every unfinished job), so the scheduler keeps nothing a crash could lose.

Background polls may be coalesced: their due time is rounded up to a 0.5 s grid, so the polls of thousands
of long jobs run in batches a couple of times a second instead of one wake-up (and one lone request) each.
A poll due every few minutes does not mind running up to half a second late; member-facing steps are never
coalesced.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Runner = Callable[[str], Awaitable[None]]
HOLD_STEP_S = 0.01
# While members wait for a first response (Discord gives them 3 s), due steps wait: in a burst of 500
# commands a second, the jobs' first steps would otherwise take a third of the loop away from the answers.
# For a moment after members waited (BUSY_GRACE_S), steps start one per round rather than all at once: in a
# burst the loop catches up for a few ms at a time, and a lump of hundreds of held steps released in such a
# gap stalls the next answers by 200 ms. A step due longer than MAX_HOLD_S ago starts anyway, so a server
# that is never quiet delays its background work but never starves it.
STEPS_PER_ROUND_WHILE_MEMBERS_WAIT = 0
STEPS_PER_ROUND_AFTER_MEMBERS_WAITED = 1
BUSY_GRACE_S = 0.5
MAX_HOLD_S = 2.0
COALESCE_GRID_S = 0.5


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Scheduler:
    def __init__(self, run: Runner, *, clock: Callable[[], float] = time.time, max_parallel: int = 200) -> None:
        self._run = run
        self._clock = clock
        # (when to run, tie-break, job id, when it was asked for): the last two differ for coalesced entries
        self._heap: list[tuple[float, int, str, float]] = []
        self._due: dict[str, float] = {}  # job id -> the run time that counts (older heap entries are stale)
        self._running: set[str] = set()
        self._again: set[str] = set()  # asked for while running: run once more right after
        self._counter = itertools.count()
        self._wake: asyncio.Future[None] | None = None  # resolved to wake the loop early
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_parallel)
        # Lag between due time and actual start, for the benchmark and /metrics.
        self.lag_observer: Callable[[float], None] | None = None
        self.on_crash: Callable[[str, BaseException], None] | None = None
        # Returns True while members wait for a first response: background steps then hold back briefly,
        # because a member has a 3 s deadline and a provider poll does not.
        self.interactive_pending: Callable[[], bool] | None = None
        self._busy_until = 0.0  # time.monotonic() until which steps start one per round (members waited)

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, job_id: str, at: float | None = None, *, coalesce: bool = False) -> None:
        """Run `job_id` at `at` (epoch seconds; None = now), or with `coalesce` at the next grid tick from
        then, together with the other polls due in the same tick. A later call replaces an earlier one."""
        at = self._clock() if at is None else at
        if job_id in self._running and at <= self._clock():
            self._again.add(job_id)
            return
        run_at = math.ceil(at / COALESCE_GRID_S) * COALESCE_GRID_S if coalesce else at
        self._due[job_id] = run_at
        heapq.heappush(self._heap, (run_at, next(self._counter), job_id, at))
        if self._heap[0][2] == job_id and self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def unschedule(self, job_id: str) -> None:
        self._due.pop(job_id, None)
        self._again.discard(job_id)

    def due(self, job_id: str) -> float | None:
        """When the job's next step runs, if it is waiting for one."""
        return self._due.get(job_id)

    def is_running(self, job_id: str) -> bool:
        return job_id in self._running

    def is_scheduled(self, job_id: str) -> bool:
        return job_id in self._due or job_id in self._running

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="easel-scheduler")

    async def stop(self, grace: float = 5.0) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._tasks:
            # Let running steps finish their current write; what they did not finish, recovery resumes.
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    def _allowance(self) -> int | None:
        """How many due steps may start in this round; None: all of them."""
        if self.interactive_pending is None:
            return None
        now = time.monotonic()  # real time, whatever clock the jobs are scheduled by
        if self.interactive_pending():
            self._busy_until = now + BUSY_GRACE_S
            return STEPS_PER_ROUND_WHILE_MEMBERS_WAIT
        return STEPS_PER_ROUND_AFTER_MEMBERS_WAITED if now < self._busy_until else None

    async def _loop(self) -> None:
        while True:
            if self._heap and self._heap[0][0] <= self._clock():
                allowance = self._allowance()
                self._start_due(self._clock(), allowance)
                if allowance is not None and self._heap and self._heap[0][0] <= self._clock():
                    await asyncio.sleep(HOLD_STEP_S)  # some held back for the members: look again next round
                    continue
            timeout = (self._heap[0][0] - self._clock()) if self._heap else None
            if timeout is not None and timeout <= 0:
                continue
            # A bare future and a timer handle: cheaper than wait_for(Event.wait()), which makes a task per
            # sleep, and this loop sleeps once per due job.
            loop = asyncio.get_running_loop()
            self._wake = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, _resolve, self._wake)
            try:
                await self._wake
            finally:
                if timer is not None:
                    timer.cancel()

    def _start_due(self, now: float, allowance: int | None) -> None:
        started = 0
        while self._heap and self._heap[0][0] <= now:
            if allowance is not None and started >= allowance and self._heap[0][0] > now - MAX_HOLD_S:
                return
            run_at, _, job_id, asked = heapq.heappop(self._heap)
            if self._due.get(job_id) != run_at:
                continue  # replaced or unscheduled
            del self._due[job_id]
            if job_id in self._running:
                self._again.add(job_id)
                continue
            if self.lag_observer is not None:
                self.lag_observer(now - asked)  # from the time asked for: coalescing delay counts as lag
            self._running.add(job_id)
            task = asyncio.create_task(self._step(job_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1

    async def _step(self, job_id: str) -> None:
        try:
            async with self._slots:
                await self._run(job_id)
        except Exception as exc:
            log.exception("Job step %s crashed", job_id)
            if self.on_crash is not None:
                self.on_crash(job_id, exc)
        finally:
            self._running.discard(job_id)
            if job_id in self._again:
                self._again.discard(job_id)
                self.schedule(job_id)
