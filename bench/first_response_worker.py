"""The bot's own process for bench/first_response.py: the real Runtime with the fake studio's adapters.

Run as `python bench/first_response_worker.py '<FirstResponseConfig as JSON>'`; prints `READY` once the bot
is logged in and its engine runs. Polls are slowed to once a minute so that the burst measures the create
path and each job's first step, not the polling after it; `slot_limit` puts the poll studio's jobs in one
slot group of that many. When the config names a `profile_path`, SIGUSR1 starts cProfile on the event
loop's thread and SIGUSR2 stops it, writes the stats there and prints `PROFILED`. SIGTERM stops the bot
gracefully (Runtime.run_until_stopped).
"""

from __future__ import annotations

import asyncio
import cProfile
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

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


def build_settings(cfg: FirstResponseConfig) -> Settings:
    values: dict[str, Any] = {
        "discord_token": cfg.bot_token,
        "discord_api_base_url": cfg.api_base,
        "discord_gateway_url": cfg.gateway_url,
        "database_path": cfg.data_dir / "easel.db",
        "http_port": cfg.http_port,
        "public_url": f"http://127.0.0.1:{cfg.http_port}",
        "quota_server_allowance": 1_000_000,  # the burst is never refused for credits
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
    runtime = Runtime(settings, **bot_options(cfg.studio_url, cfg.studio_token, cfg.slot_limit))
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
