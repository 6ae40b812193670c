"""The bot's own process for bench/first_response.py: the real Runtime with the fake studio's adapters.

Run as `python bench/first_response_worker.py '<FirstResponseConfig as JSON>'`; prints `READY` once the bot
is logged in and its engine runs. The settings and adapters are chaos_worker's (one way to run the bot in a
bench); polls are slowed to once a minute so that the burst measures the create path and each job's first
step, not the polling after it. When the config names a `profile_path`, SIGUSR1 starts cProfile on the event
loop's thread and SIGUSR2 stops it, writes the stats there and prints `PROFILED`. SIGTERM stops the bot
gracefully (Runtime.run_until_stopped).
"""

from __future__ import annotations

import asyncio
import cProfile
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chaos_worker import READY_TIMEOUT_S, WorkerConfig, bot_options, build_settings  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from bot.runtime import Runtime  # noqa: E402


class FirstResponseConfig(WorkerConfig):
    profile_path: Path | None = None


class Profiling:
    """cProfile switched on and off by signals, so that only the burst is profiled (not start-up)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.profile: cProfile.Profile | None = None

    def start(self) -> None:
        self.profile = cProfile.Profile()
        self.profile.enable()

    def stop(self) -> None:
        if self.profile is None:
            return
        self.profile.disable()
        self.profile.dump_stats(str(self.path))
        self.profile = None
        print("PROFILED", flush=True)


async def main(cfg: FirstResponseConfig) -> None:
    settings = build_settings(cfg)
    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    runtime = Runtime(settings, **bot_options(cfg))
    await runtime.open()
    if cfg.profile_path is not None:
        profiling = Profiling(cfg.profile_path)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, profiling.start)
        loop.add_signal_handler(signal.SIGUSR2, profiling.stop)
    running = asyncio.create_task(runtime.run_until_stopped())
    await asyncio.sleep(0)  # wait_until_ready() raises before the start task has run
    await asyncio.wait_for(runtime.bot.wait_until_ready(), READY_TIMEOUT_S)
    for _ in range(int(READY_TIMEOUT_S / 0.02)):  # the engine starts just after the bot is ready
        if getattr(runtime.bot.jobs, "started", True):
            break
        await asyncio.sleep(0.02)
    print("READY", flush=True)
    await running


if __name__ == "__main__":
    asyncio.run(main(FirstResponseConfig.model_validate_json(sys.argv[1])))
