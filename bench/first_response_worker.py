"""The bot's own process for bench/first_response.py: the real Runtime with the fake studio's adapters.

Run as `python bench/first_response_worker.py '<FirstResponseConfig as JSON>'`; prints `READY` once the bot
is logged in and its engine runs. Polls are slowed to once a minute so that the burst measures the create
path and each job's first step, not the polling after it; `slot_limit` puts the poll studio's jobs in one
slot group of that many. SIGUSR1 and SIGUSR2 mark the burst's start and end (see Burst: garbage
collections, and cProfile when the config names a `profile_path`). SIGTERM stops the bot
gracefully (Runtime.run_until_stopped).
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import signal
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import httpx  # noqa: E402

from bot.jobs import scheduler  # noqa: E402
from bot.jobs.engine import ProviderLimits  # noqa: E402
from bot.logs import setup_logging  # noqa: E402
from bot.providers.base import Adapter  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.fakes.studio_adapters import CallbackStudio, PollStudio, SyncStudio  # noqa: E402

READY_TIMEOUT_S = 30.0
SLOT_GROUP = "gpu"
POLL_S = 60.0  # one poll a minute: the burst measures the create path and the first step, not polling


class FirstResponseConfig(BaseModel):
    bot_token: str
    api_base: str
    gateway_url: str
    data_dir: Path
    http_port: int
    studio_url: str
    studio_token: str
    slot_limit: int | None = None  # the poll studio's jobs share this many slots; None: no slot group at all
    log_level: str = "WARNING"
    profile_path: Path | None = None
    gc_freeze: bool = False  # gc.freeze() once started (an experiment)
    hold_steps: int | None = None  # scheduler.STEPS_PER_ROUND_WHILE_MEMBERS_WAIT (default 1; 1000: no throttle)
    discord_connections: int | None = None  # a cap on discord.py's connections to Discord (default: none)


def build_settings(cfg: FirstResponseConfig) -> Settings:
    values: dict[str, Any] = {
        "discord_token": cfg.bot_token,
        "discord_api_base_url": cfg.api_base,
        "discord_gateway_url": cfg.gateway_url,
        "database_path": cfg.data_dir / "easel.db",
        "http_port": cfg.http_port,
        "public_url": f"http://127.0.0.1:{cfg.http_port}",
        "quota_server_allowance": 1_000_000,  # the burst is never refused for credits
        "local_studio_enabled": False,  # the fake studio's adapters only (no worker pool to start)
        "log_level": cfg.log_level,
    }
    return Settings(_env_file=None, **values)


def bot_options(studio_url: str, studio_token: str, slot_limit: int | None) -> dict[str, Any]:
    """The fake studio's three adapters and the poll studio's limits; the same for both of the bench's modes."""
    slot = SLOT_GROUP if slot_limit is not None else None

    def adapters(settings: Settings, client: httpx.AsyncClient) -> dict[str, Adapter]:
        return {
            SyncStudio.name: SyncStudio(client, studio_url, studio_token),
            PollStudio.name: PollStudio(client, studio_url, studio_token, slot=slot),
            CallbackStudio.name: CallbackStudio(client, studio_url, studio_token),
        }

    max_active = {SLOT_GROUP: slot_limit} if slot_limit is not None else {}
    return {
        "adapter_factory": adapters,
        "extra_extensions": ("tests.ext.studio",),
        "provider_limits_override": {
            PollStudio.name: ProviderLimits(max_active=max_active, min_poll_s=POLL_S, max_poll_s=POLL_S)
        },
        "guild_ready_timeout": 0.05,
    }


class Burst:
    """What the bot measures of itself during the burst, between the bench's SIGUSR1 and SIGUSR2: its garbage
    collections (count and seconds, by generation), and with a `profile_path`, a cProfile of the loop's thread.
    SIGUSR2 prints `GC <n0> <n1> <n2> <s0> <s1> <s2>`, then `BURST-END`."""

    def __init__(self, profile_path: Path | None) -> None:
        self.profile_path = profile_path
        self.profile: cProfile.Profile | None = None
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started_at = 0.0
        self._on = False
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if not self._on:
            return
        if phase == "start":
            self._started_at = time.perf_counter()
        else:
            generation = int(info["generation"])
            self.counts[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started_at

    def start(self) -> None:
        self.counts, self.seconds, self._on = [0, 0, 0], [0.0, 0.0, 0.0], True
        if self.profile_path is not None:
            self.profile = cProfile.Profile()
            self.profile.enable()

    def stop(self) -> None:
        if self.profile is not None and self.profile_path is not None:
            self.profile.disable()
            self.profile.dump_stats(str(self.profile_path))
            self.profile = None
        self._on = False

    def report(self) -> str:
        return "GC " + " ".join(str(n) for n in self.counts) + " " + " ".join(f"{s:.4f}" for s in self.seconds)

    def stop_and_report(self) -> None:
        self.stop()
        print(self.report())
        print("BURST-END", flush=True)


async def main(cfg: FirstResponseConfig) -> None:
    settings = build_settings(cfg)
    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    options = bot_options(cfg.studio_url, cfg.studio_token, cfg.slot_limit)
    if cfg.discord_connections is not None:
        # An experiment, through discord.Client's own `connector` option: a burst then waits for a kept-alive
        # connection instead of opening (and paying for) a new one per request in flight.
        options["connector"] = aiohttp.TCPConnector(limit=cfg.discord_connections)
    if cfg.hold_steps is not None:
        # An experiment: how many due job steps start per 10 ms round while members' first responses are
        # pending (steps due over scheduler.MAX_HOLD_S ago start anyway).
        scheduler.STEPS_PER_ROUND_WHILE_MEMBERS_WAIT = cfg.hold_steps
    runtime = Runtime(settings, **options)
    await runtime.open()
    burst = Burst(cfg.profile_path)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, burst.start)
    loop.add_signal_handler(signal.SIGUSR2, burst.stop_and_report)
    running = asyncio.create_task(runtime.run_until_stopped())
    await asyncio.sleep(0)  # wait_until_ready() raises before the start task has run
    await asyncio.wait_for(runtime.bot.wait_until_ready(), READY_TIMEOUT_S)
    for _ in range(int(READY_TIMEOUT_S / 0.02)):  # the engine starts just after the bot is ready
        if getattr(runtime.bot.jobs, "started", True):
            break
        await asyncio.sleep(0.02)
    if cfg.gc_freeze:
        # An experiment: what start-up made (modules, discord.py's caches) leaves the collector's view, so
        # that the full collections a burst triggers do not walk it again and again.
        gc.collect()
        gc.freeze()
    print("READY", flush=True)
    await running


if __name__ == "__main__":
    asyncio.run(main(FirstResponseConfig.model_validate_json(sys.argv[1])))
