"""The scheduler on a real event loop: one task for all sleeping jobs, due order, and coalesced polls."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import pytest

from bot.jobs import scheduler as scheduler_module
from bot.jobs.scheduler import COALESCE_GRID_S, MAX_HOLD_S, Scheduler
from tests.harness import eventually


class Recorder:
    def __init__(self) -> None:
        self.ran: dict[str, float] = {}
        self.order: list[str] = []

    async def __call__(self, job_id: str) -> None:
        self.ran[job_id] = time.time()
        self.order.append(job_id)


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    async def check() -> bool:
        return condition()

    await eventually(check, within=within)


def next_tick_after(now: float) -> float:
    """A grid tick at least one whole tick away, so the jobs below are scheduled before it comes."""
    return (int(now / COALESCE_GRID_S) + 2) * COALESCE_GRID_S


async def test_thousands_of_sleeping_jobs_cost_one_task_and_run_in_due_order() -> None:
    run = Recorder()
    scheduler = Scheduler(run)
    before = len(asyncio.all_tasks())
    scheduler.start()
    now = time.time()
    for n in range(2000):
        scheduler.schedule(f"later{n}", now + 3600 + n)
    for n in (3, 1, 2):
        scheduler.schedule(f"soon{n}", now + 0.05 * n)
    assert len(asyncio.all_tasks()) == before + 1  # the scheduler itself, nothing per job
    await until(lambda: len(run.order) == 3)
    assert run.order == ["soon1", "soon2", "soon3"]
    assert all(run.ran[f"soon{n}"] >= now + 0.05 * n for n in (1, 2, 3))  # never early
    assert len(scheduler) == 2000
    await scheduler.stop()


async def test_coalesced_polls_run_together_at_the_next_tick_never_early() -> None:
    run = Recorder()
    scheduler = Scheduler(run)
    asked: dict[str, float] = {}
    lags: list[float] = []
    scheduler.lag_observer = lags.append
    scheduler.start()
    tick = next_tick_after(time.time())
    for n in range(20):  # spread over most of one grid interval
        asked[f"poll{n}"] = tick - COALESCE_GRID_S + 0.02 * (n + 1)
        scheduler.schedule(f"poll{n}", asked[f"poll{n}"], coalesce=True)
        asked[f"member{n}"] = asked[f"poll{n}"]
        scheduler.schedule(f"member{n}", asked[f"member{n}"])  # not coalesced: runs on its own time
    await until(lambda: len(run.ran) == 40, within=10)
    await scheduler.stop()
    polls = [run.ran[f"poll{n}"] for n in range(20)]
    members = [run.ran[f"member{n}"] for n in range(20)]
    assert all(run.ran[job] >= asked[job] for job in asked)
    assert min(polls) >= tick  # the coalesced ones waited for the tick...
    assert max(polls) - min(polls) < (max(members) - min(members)) / 4  # ...and ran as one batch
    assert min(members) < tick  # the others did not wait
    assert len(lags) == 40 and min(lags) >= 0  # lag is counted from the time asked for


async def test_a_callback_brings_a_coalesced_poll_forward_and_it_runs_once() -> None:
    run = Recorder()
    scheduler = Scheduler(run)
    scheduler.start()
    scheduler.schedule("job", time.time() + 60, coalesce=True)
    scheduler.schedule("job")  # a provider callback: check now
    await until(lambda: run.order == ["job"])
    assert len(scheduler) == 0  # the replaced entry is gone
    scheduler.unschedule("job")
    await scheduler.stop()


class Members:
    """interactive_pending: members waiting for a first response; records how many steps had started at
    each look."""

    def __init__(self, run: Recorder) -> None:
        self.waiting = True
        self.run = run
        self.started_at_look: list[int] = []

    def __call__(self) -> bool:
        self.started_at_look.append(len(self.run.order))
        return self.waiting


async def test_while_members_wait_due_steps_wait_then_start_one_per_round_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler_module, "BUSY_GRACE_S", 600.0)  # the moment after they waited outlasts the test
    run = Recorder()
    fake_now = [1_000_000.0]  # the clock stands still: no step is held past MAX_HOLD_S here
    scheduler = Scheduler(run, clock=lambda: fake_now[0])
    members = scheduler.interactive_pending = Members(run)
    scheduler.start()
    for n in range(40):
        scheduler.schedule(f"job{n:02}", fake_now[0] - 1.0 + n * 0.001)  # all due, oldest first
    # 30 looks, 10 ms apart: longer than any fixed hold would last.
    await until(lambda: len(members.started_at_look) >= 30)
    assert run.order == []  # the members' answers go first
    members.waiting = False
    looked = len(members.started_at_look)
    await until(lambda: len(run.order) == 40)
    # Then one per round, not the 40 in a lump (which would stall the next members' answers in a burst).
    after = members.started_at_look[looked - 1 :]
    assert max(b - a for a, b in itertools.pairwise(after)) <= 1
    assert run.order == sorted(run.order)  # in due order
    await scheduler.stop()


async def test_steps_held_for_members_longer_than_max_hold_start_anyway() -> None:
    run = Recorder()
    fake_now = [1_000_000.0]
    scheduler = Scheduler(run, clock=lambda: fake_now[0])
    members = scheduler.interactive_pending = Members(run)  # members wait forever: a server that is always busy
    scheduler.start()
    for n in range(20):
        scheduler.schedule(f"job{n:02}")
    await until(lambda: len(members.started_at_look) >= 6)
    assert run.order == []
    fake_now[0] += MAX_HOLD_S + 0.1
    await until(lambda: len(run.order) == 20)
    assert members.waiting  # they never stopped waiting: the steps were late, not starved
    await scheduler.stop()
