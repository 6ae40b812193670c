"""A test-only extension with a command that has a bug, to see the tree's error handling."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import EaselBot


class Boom(commands.Cog):
    @app_commands.command(name="boom", description="Raises an unexpected error (tests only)")
    async def boom(self, interaction: discord.Interaction[EaselBot]) -> None:
        raise RuntimeError("kaboom: a bug in a command")


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Boom())
