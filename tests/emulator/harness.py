"""Run a real discord.py client against the emulator for the duration of a test."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from .emulator import DiscordEmulator

log = logging.getLogger(__name__)


@dataclass
class BotRun:
    """Errors that reached the command tree's on_error (app commands run in their own tasks)."""

    errors: list[BaseException] = field(default_factory=list)


@asynccontextmanager
async def pointed_at(emu: DiscordEmulator) -> AsyncIterator[None]:
    """Point discord.py's REST base and default gateway at the emulator, restoring them afterwards."""
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = emu.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emu.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


@asynccontextmanager
async def running_bot(
    bot: discord.Client, emu: DiscordEmulator, *, ready_timeout: float = 5.0
) -> AsyncIterator[BotRun]:
    run = BotRun()
    tree = getattr(bot, "tree", None)
    if tree is not None:

        async def collect(interaction: discord.Interaction, error: discord.app_commands.AppCommandError) -> None:
            run.errors.append(error)
            log.error("app command error", exc_info=error)

        tree.on_error = collect  # type: ignore[method-assign]
    async with pointed_at(emu):
        task = asyncio.create_task(bot.start(emu.bot_token), name="emulated-bot")
        try:
            await _wait_ready(bot, task, ready_timeout)
            yield run
        finally:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 5.0)


async def _wait_ready(bot: discord.Client, task: asyncio.Task[None], within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        waiter = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait(
            {waiter, task}, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            waiter.cancel()
            task.result()  # re-raises the bot's start-up failure
            raise RuntimeError("emulator: the bot stopped before it was ready")
        if not done:
            waiter.cancel()
            raise TimeoutError(f"emulator: the bot was not ready within {within}s")
        if isinstance(waiter.exception(), RuntimeError):
            await asyncio.sleep(0)  # wait_until_ready() before start() set the client up
            continue
        waiter.result()
        return
