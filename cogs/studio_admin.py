"""/studio-admin default|view: which studio makes each kind of thing (image, upscale, edit, video) here.

Like /quota-admin: hidden from members without Manage Server, and checked by the bot too (a server can
loosen Discord's command permissions). A default naming a studio that is off is kept; until it is on, the
next enabled studio makes those jobs and members are told which.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.app import EaselBot
from bot.errors import BadInput, NotAllowed
from bot.permissions import is_server_admin
from bot.providers.routing import KIND_NAMES, KINDS, OFFERS, Router, studio_name
from bot.storage.studios import StudioDefaults
from bot.tree import respond

AUTO = "auto"
KIND_CHOICES = [Choice(name=KIND_NAMES[kind], value=kind) for kind in KINDS]
STUDIO_CHOICES = [Choice(name="Automatic (the first studio that is on)", value=AUTO)] + [
    Choice(name=studio_name(s), value=s) for s in dict.fromkeys(s for by in OFFERS.values() for s in by)
]


@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
class StudioAdmin(commands.GroupCog, group_name="studio-admin", group_description="Which studio makes what here"):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        self.defaults = StudioDefaults(bot.db)
        self.router = Router(bot.enabled_providers)

    async def interaction_check(self, interaction: discord.Interaction[EaselBot]) -> bool:  # type: ignore[override]
        if not is_server_admin(interaction):
            raise NotAllowed("Only server admins (Manage Server) can choose Easel's studios here.")
        return True

    @app_commands.command(name="default", description="Choose the studio that makes one kind of thing here")
    @app_commands.describe(feature="What members ask for", studio="The studio (Automatic: the first that is on)")
    @app_commands.choices(feature=KIND_CHOICES, studio=STUDIO_CHOICES)
    async def default(self, interaction: discord.Interaction[EaselBot], feature: str, studio: str) -> None:
        assert interaction.guild_id is not None
        what = KIND_NAMES[feature].lower()
        if studio == AUTO:
            await self.defaults.clear(interaction.guild_id, feature)
            route = self.router.studios(feature)
            now = studio_name(route[0]) if route else "no studio (none that can do it is on)"
            await respond(interaction, f"✅ {KIND_NAMES[feature]}: automatic, which today is **{now}**.")
            return
        if studio not in OFFERS[feature]:
            offered = ", ".join(studio_name(s) for s in OFFERS[feature])
            raise BadInput(f"{studio_name(studio)} cannot do {what}; the studios that can are: {offered}.")
        await self.defaults.set(interaction.guild_id, feature, studio, interaction.user.id)
        text = f"✅ {KIND_NAMES[feature]} here is made by **{studio_name(studio)}** unless a member picks another."
        if studio not in self.router.enabled:
            available = self.router.studios(feature)
            instead = studio_name(available[0]) if available else "nothing"
            text += (
                f"\n⚠️ {studio_name(studio)} is off in this Easel (no API key), so for now {instead} makes these "
                "and members are told."
            )
        await respond(interaction, text)

    @app_commands.command(name="view", description="Which studio makes what here, and which studios are on")
    async def view(self, interaction: discord.Interaction[EaselBot]) -> None:
        assert interaction.guild_id is not None
        chosen = await self.defaults.all(interaction.guild_id)
        embed = discord.Embed(title="Studios in this server", colour=discord.Colour.blurple())
        for kind in KINDS:
            available = self.router.studios(kind)
            route = self.router.route(kind, server_default=chosen.get(kind)) if available else None
            setting = studio_name(chosen[kind]) if kind in chosen else "automatic"
            lines = [f"Default: {setting}"]
            lines.append(f"Now: **{studio_name(route.studio)}**" if route else "Now: none is on")
            if route is not None and route.note:
                lines.append("(the default is off)")
            if len(available) > 1:
                lines.append("Members may pick: " + ", ".join(studio_name(s) for s in available))
            embed.add_field(name=KIND_NAMES[kind], value="\n".join(lines), inline=True)
        await respond(interaction, embed=embed)


async def setup(bot: EaselBot) -> None:
    if any(Router(bot.enabled_providers).studios(kind) for kind in KINDS):  # nothing to choose otherwise
        await bot.add_cog(StudioAdmin(bot))
