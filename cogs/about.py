"""/about: what this Easel is, and what it can do in this server."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import PROVIDER_KEYS, EaselBot
from bot.tree import respond
from bot.version import PROJECT_URL, VERSION

PROVIDER_TITLES = {
    "mimipanda": "Mimi Panda (coloring pages, paint-by-numbers, AI images, upscale, filters)",
    "mimpi": "mimpi.ai (personal portrait models)",
    "flair": "Flair AI (custom style models)",
    "imagine": "Imagine by Vyro (text-to-image, edits, video)",
    "local": "Easel's own studio (coloring pages, paint-by-numbers, upscale, filters; free, on this machine)",
}


class About(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot

    @app_commands.command(name="about", description="What Easel is and which image studios are on here")
    async def about(self, interaction: discord.Interaction[EaselBot]) -> None:
        embed = discord.Embed(
            title=f"Easel {VERSION}",
            description="AI image studios for this community. Your server's admins decide what they cost.",
            colour=discord.Colour.blurple(),
        )
        lines = []
        for name in PROVIDER_KEYS:
            on = name in self.bot.enabled_providers
            lines.append(f"{'✅' if on else '⛔'} {PROVIDER_TITLES[name]}{'' if on else ' — off'}")
        embed.add_field(name="Studios", value="\n".join(lines), inline=False)
        commands_here = sorted(
            c.qualified_name for c in self.bot.tree.walk_commands() if isinstance(c, app_commands.Command)
        )
        embed.add_field(name="Commands", value=", ".join(f"/{c}" for c in commands_here)[:1024], inline=False)
        embed.add_field(name="Help", value=f"[Documentation and source]({PROJECT_URL})", inline=False)
        await respond(interaction, embed=embed, ephemeral=True)


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(About(bot))
