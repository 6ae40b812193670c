"""Runs retention (bot.retention) in the background and keeps the data folder's size on /metrics."""

from __future__ import annotations

import asyncio
import contextlib

from discord.ext import commands

from bot.app import EaselBot
from bot.retention import Retention, trained_photos_referrer


class RetentionTask(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        settings = bot.settings
        self.retention = Retention(
            db=bot.db,
            store=bot.jobs.store,
            files=bot.jobs.files,
            days=settings.retention_days,
            remove_trained_photos=settings.retention_remove_trained_photos,
            metrics=bot.metrics,
        )
        if not settings.retention_remove_trained_photos:
            # Finished trainings would release their photos: a referrer keeps them (within the period).
            bot.jobs.store.add_input_referrer(trained_photos_referrer(settings.retention_days))
        self._task: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self.retention.run_forever(), name="easel-retention")

    async def cog_unload(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(RetentionTask(bot))
