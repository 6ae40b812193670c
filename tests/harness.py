"""Easel under test: the real bot, its real SQLite file and web server, against the Discord emulator."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot.app import EaselBot
from bot.runtime import Runtime
from bot.settings import Settings
from tests.emulator import DiscordEmulator

T = TypeVar("T")
READY_TIMEOUT = 10.0


async def eventually(predicate: Callable[[], Awaitable[T]], within: float = 5.0, interval: float = 0.02) -> T:
    """Await `predicate()` until it returns something truthy (for state that lives in the bot's database)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{getattr(predicate, '__name__', 'condition')} did not happen within {within}s")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(emu: DiscordEmulator, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": emu.bot_token,
        "discord_api_base_url": emu.api_base,
        "discord_gateway_url": emu.gateway_url,
        "database_path": data_dir / "easel.db",
        "http_port": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Easel:
    emu: DiscordEmulator
    settings: Settings
    bot_options: dict[str, Any] = field(default_factory=dict)
    runtime: Runtime | None = None
    task: asyncio.Task[None] | None = None
    expect_errors: bool = False
    seen_errors: list[tuple[str, BaseException]] = field(default_factory=list)

    @property
    def bot(self) -> EaselBot:
        assert self.runtime is not None
        return self.runtime.bot

    @property
    def web_url(self) -> str:
        assert self.runtime is not None
        return f"http://127.0.0.1:{self.runtime.web.port}"

    async def start(self) -> Easel:
        # A fresh dict each start: Runtime consumes some options (the adapter factory builds anew).
        self.runtime = Runtime(self.settings, **{"guild_ready_timeout": 0.05, **self.bot_options})
        await self.runtime.open()
        self.task = self.runtime.start()
        await asyncio.sleep(0)  # wait_until_ready() raises if the start task has not run yet
        ready = asyncio.ensure_future(self.bot.wait_until_ready())
        done, _ = await asyncio.wait({ready, self.task}, timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if self.task in done and self.task.exception() is not None:
                raise RuntimeError("the bot stopped while starting") from self.task.exception()
            raise TimeoutError("the bot did not become ready")
        return self

    async def stop(self) -> None:
        if self.runtime is None:
            return
        self.seen_errors.extend(self.bot.unexpected_errors)
        await self.runtime.close()
        self.runtime = None

    async def restart(self, **settings_overrides: Any) -> Easel:
        await self.stop()
        if settings_overrides:
            self.settings = Settings(_env_file=None, **{**self.settings.model_dump(), **settings_overrides})  # type: ignore[call-arg]
        return await self.start()

    def unexpected(self) -> list[tuple[str, BaseException]]:
        live = self.bot.unexpected_errors if self.runtime is not None else []
        return [*self.seen_errors, *live]
