"""A test-only feature that puts the generic Upscale button on its results, as other cogs (Flair styles) do:
the test studio's "ai_image" results get `upscale_button_for()` from cogs.result_actions."""

from __future__ import annotations

from discord.ext import commands

from bot.app import EaselBot
from bot.delivery import ButtonSpec
from bot.jobs.model import Job
from cogs.result_actions import upscale_button_for


class UpscaleEverywhere(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot

        async def buttons(job: Job) -> list[ButtonSpec]:
            button = await upscale_button_for(bot, job.guild_id)
            return [button] if button is not None else []

        bot.jobs.deliverer.button_makers["ai_image"] = buttons


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(UpscaleEverywhere(bot))
