"""A test-only command that starts studio jobs in each execution style."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import EaselBot
from bot.components import Spends
from bot.delivery import ButtonSpec
from bot.errors import NotFound
from bot.jobs.engine import Alternative

PROVIDERS = {"sync": "studio_sync", "poll": "studio_poll", "callback": "studio_cb"}


class Studio(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        bot.jobs.deliverer.buttons_for["ai_image"] = [ButtonSpec("again", "Again", "🔁", spends=Spends("ai_image"))]
        bot.components.register("ej", "again", self.on_again, spends=Spends("ai_image"))

    async def on_again(self, interaction: discord.Interaction[EaselBot], job_id: str, _arg: str | None) -> None:
        """Like a chain button: a new job from a result (the same prompt, through the same studio)."""
        source = await self.bot.jobs.store.get(job_id)
        if source is None:
            raise NotFound("This result's job no longer exists.")
        await self.bot.jobs.create(
            interaction,
            feature=source.feature,
            provider=source.provider,
            params={k: v for k, v in source.params.items() if not k.startswith("_")},
            units=int(source.params.get("count", 1)),
            parent_job=job_id,
        )

    @app_commands.command(name="studio", description="Render a test image (tests only)")
    async def studio(
        self,
        interaction: discord.Interaction[EaselBot],
        prompt: str,
        style: Literal["sync", "poll", "callback"] = "poll",
        size: app_commands.Range[int, 16, 2048] = 128,
        count: app_commands.Range[int, 1, 12] = 1,
        fallback: Literal["sync", "poll", "callback"] | None = None,
    ) -> None:
        params = {"prompt": prompt, "size": size, "count": count}
        alternatives = [Alternative(PROVIDERS[fallback], "ai_image", params, count)] if fallback else []
        await self.bot.jobs.create(
            interaction,
            feature="ai_image",  # charged as an AI image (1 credit each): the real ledger is exercised
            provider=PROVIDERS[style],
            params=params,
            units=count,
            alternatives=alternatives,
        )


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Studio(bot))
