"""The first-response bench in small (bench/first_response.py): a burst through the bot in its own process and
in this one answers every command, creates and submits every job, and reads the bot's CPU, garbage
collections and profile; the py-spy sample reader splits a thread's CPU by part as documented."""

from __future__ import annotations

import pstats
from pathlib import Path

from bench.first_response import run
from bench.first_response_profile import LOOP, read_samples, sampled_breakdown


async def test_a_burst_through_the_bot_process_is_answered_submitted_measured_and_profiled(tmp_path: Path) -> None:
    profile = tmp_path / "bot.prof"
    result = await run(20, 5, "studio", 0.2, bot_process=True, profile=profile)

    assert result.mode == "bot-process"
    assert len(result.latencies_ms) == 20 and result.missed == 0
    assert result.submitted == 21  # the warm-up's job and the burst's: every first step reached the studio
    # The bot's CPU is its own process's, read from /proc: some, and the loop's thread no more than the whole
    # (give or take a clock tick: the two counters are read one after the other).
    assert result.bot_cpu_s is not None and result.bot_main_cpu_s is not None and result.bot_wait_s is not None
    assert result.bot_cpu_s > 0 and 0 < result.bot_main_cpu_s <= result.bot_cpu_s + 0.02
    assert len(result.gc_counts) == 3 and len(result.gc_seconds) == 3  # reported by the worker at the burst's end
    # cProfile ran in the bot's process during the burst: it saw the create path (and nothing of the bench's).
    functions = {(Path(file).as_posix(), name) for file, _line, name in pstats.Stats(str(profile)).stats}  # type: ignore[attr-defined]
    assert any(file.endswith("bot/jobs/engine.py") and name == "create" for file, name in functions)
    assert not any(file.endswith("tests/emulator/gateway.py") for file, _name in functions)


async def test_a_burst_in_process_is_answered_and_its_cpu_is_the_bench_s() -> None:
    result = await run(10, 3, "about", 0.1, bot_process=False)

    assert result.mode == "in-process"
    assert len(result.latencies_ms) == 10 and result.missed == 0
    assert result.bot_cpu_s is None and result.bench_cpu_s > 0


def test_py_spy_samples_split_each_thread_s_cpu_by_part(tmp_path: Path) -> None:
    raw = tmp_path / "samples.txt"
    loop = "thread (11): MainThread;BaseEventLoop._run_once (base_events.py:1922);Handle._run (events.py:80)"
    create = "CommandTree._call (tree.py:1302);JobEngine.create (bot/jobs/engine.py:446)"
    raw.write_text(
        f"{loop};{create};JobEngine._tell_queued (bot/jobs/engine.py:463) 30\n"
        f"{loop};{create};new_job_id (bot/jobs/engine.py:85) 10\n"
        f"{loop};JobEngine._step (bot/jobs/engine.py:261);Steps.call (bot/jobs/steps.py:141) 40\n"
        f"{loop};_SelectorSocketTransport._read_ready (selector_events.py:1) 20\n"
        "thread (12): Thread-1 (_connection_worker_thread);JobCreator.create.<locals>.write (creation.py:181);"
        "JobStore.insert (store.py:72) 5\n"
    )
    samples = read_samples(raw)
    assert sum(s.hits for s in samples if LOOP in s.thread) == 100

    # 100 loop samples over 2.0 s of its CPU and 10 commands: 1% of the thread is 2 ms per command.
    text = sampled_breakdown(raw, 10, 2.0, 0.5)

    def line(label: str) -> str:
        (found,) = [x for x in text.splitlines() if x.strip().startswith(label)]
        return found

    assert "80.00 ms" in line("JobEngine.create, all of it") and "40.0%" in line("JobEngine.create, all of it")
    assert "60.00 ms" in line("the first response's HTTP call (_tell_queued)")
    assert "20.00 ms" in line("new_job_id")
    assert "80.00 ms" in line("the job's first step (JobEngine._step)")
    assert "50.00 ms" in line("create's transaction (reserve + insert + balance)")  # all of the db thread's
    assert "_SelectorSocketTransport._read_ready" in text and "40.00 ms per command" in text  # the rest, named
