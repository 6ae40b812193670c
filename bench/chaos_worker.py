"""One Easel process for bench/chaos.py: the real runtime with the fake studio's three adapters.

Run by the bench as `python bench/chaos_worker.py '<WorkerConfig as JSON>'`; prints `READY` once the bot is
logged in and its engine runs, then `UNEXPECTED <where>: <error>` for every error that reached the bot's
handler. The bench SIGKILLs it to simulate a crash (nothing is flushed or closed: the honest crash), and
SIGTERMs it at the end (a graceful stop, through Runtime.run_until_stopped).
"""

from __future__ import annotations

import asyncio
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

SLOT_GROUP = "gpu"  # the poll studio's jobs share this many slots (ProviderLimits.max_active)
READY_TIMEOUT_S = 30.0


class WorkerConfig(BaseModel):
    bot_token: str
    api_base: str
    gateway_url: str
    data_dir: Path
    http_port: int
    studio_url: str
    studio_token: str
    adapter_timeout_s: float
    deadline_s: float
    slot_limit: int
    min_poll_s: float = 0.2
    max_poll_s: float = 1.0
    retry_base_s: float = 0.1
    log_level: str = "WARNING"


def build_settings(cfg: WorkerConfig) -> Settings:
    values: dict[str, Any] = {
        "discord_token": cfg.bot_token,
        "discord_api_base_url": cfg.api_base,
        "discord_gateway_url": cfg.gateway_url,
        "database_path": cfg.data_dir / "easel.db",
        "http_port": cfg.http_port,  # fixed across restarts: callback URLs already given to the studio stay valid
        "public_url": f"http://127.0.0.1:{cfg.http_port}",
        "quota_server_allowance": 1_000_000,  # credits are checked by the ledger, not rationed here
        "log_level": cfg.log_level,
    }
    return Settings(_env_file=None, **values)


def bot_options(cfg: WorkerConfig) -> dict[str, Any]:
    def adapters(settings: Settings, client: httpx.AsyncClient) -> dict[str, Adapter]:
        common: dict[str, Any] = {"deadline_s": cfg.deadline_s, "timeout": cfg.adapter_timeout_s}
        return {
            SyncStudio.name: SyncStudio(client, cfg.studio_url, cfg.studio_token, **common),
            PollStudio.name: PollStudio(client, cfg.studio_url, cfg.studio_token, slot=SLOT_GROUP, **common),
            CallbackStudio.name: CallbackStudio(client, cfg.studio_url, cfg.studio_token, **common),
        }

    limits = ProviderLimits(min_poll_s=cfg.min_poll_s, max_poll_s=cfg.max_poll_s, retry_base_s=cfg.retry_base_s)
    return {
        "adapter_factory": adapters,
        "extra_extensions": ("tests.ext.studio",),
        "provider_limits_override": {
            SyncStudio.name: limits,
            PollStudio.name: ProviderLimits(
                max_active={SLOT_GROUP: cfg.slot_limit},
                min_poll_s=cfg.min_poll_s,
                max_poll_s=cfg.max_poll_s,
                retry_base_s=cfg.retry_base_s,
            ),
            CallbackStudio.name: limits,
        },
        "guild_ready_timeout": 0.05,
    }


async def report_unexpected(runtime: Runtime) -> None:
    """Forward errors that reached the bot's handler to the bench, as they happen (a SIGKILL loses nothing
    already printed)."""
    seen: set[int] = set()  # ids of the entries printed; the deque keeps the last 100, so they stay alive
    while True:
        for entry in list(getattr(runtime.bot, "unexpected_errors", ())):  # read loosely: engines get rewritten
            if id(entry) not in seen:
                seen.add(id(entry))
                print(f"UNEXPECTED {entry[0]}: {entry[1]!r}"[:500], flush=True)
        await asyncio.sleep(0.2)


async def report_stalls(threshold_s: float = 1.0) -> None:
    """Print `STALL <seconds>` whenever this process's event loop was blocked for longer than `threshold_s`."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.1)
        late = loop.time() - before - 0.1
        if late > threshold_s:
            print(f"STALL {late:.2f}", flush=True)


async def main(cfg: WorkerConfig) -> None:
    settings = build_settings(cfg)
    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    runtime = Runtime(settings, **bot_options(cfg))
    await runtime.open()
    running = asyncio.create_task(runtime.run_until_stopped())
    await asyncio.sleep(0)  # wait_until_ready() raises before the start task has run
    await asyncio.wait_for(runtime.bot.wait_until_ready(), READY_TIMEOUT_S)
    for _ in range(int(READY_TIMEOUT_S / 0.02)):  # the engine starts just after the bot is ready
        if getattr(runtime.bot.jobs, "started", True):
            break
        await asyncio.sleep(0.02)
    print("READY", flush=True)
    reporters = [asyncio.create_task(report_unexpected(runtime)), asyncio.create_task(report_stalls())]
    try:
        await running
    finally:
        for task in reporters:
            task.cancel()


if __name__ == "__main__":
    asyncio.run(main(WorkerConfig.model_validate_json(sys.argv[1])))
