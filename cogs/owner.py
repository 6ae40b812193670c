"""/owner: for the person who runs this Easel and pays its studios (servers, leave, studios, spend).

Checked by the bot against the application's owner or team (application_info), never Discord permissions:
a server admin is not the person who pays. Discord also hides the group from non-admins (default_permissions)
so members do not see it, but that is a convenience a server can loosen, not the check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import discord
from discord import app_commands
from discord.ext import commands
from prometheus_client import Counter

from bot import limits
from bot.access import guild_allowed, is_owner
from bot.app import PROVIDER_KEYS, EaselBot
from bot.errors import BadInput, NotAllowed
from bot.spend import SpendReport, spend_this_period
from bot.tree import defer, respond
from cogs.about import PROVIDER_TITLES
from cogs.quota import FEATURE_PROVIDERS, feature_name

NOT_OWNER = (
    "Only the owner of this Easel (the Discord application's owner or team) can use /owner: being a server "
    "admin is not enough."
)
ERROR_STATES = ("failed", "expired")
MAX_SERVERS_LISTED = 25


def counter_totals(metric: Counter, key_label: str, *, where: Mapping[str, tuple[str, ...]]) -> dict[str, float]:
    """Sum a labelled prometheus Counter by one label, keeping samples whose labels match `where`."""
    totals: dict[str, float] = {}
    for family in metric.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            if all(sample.labels.get(label) in allowed for label, allowed in where.items()):
                key = sample.labels.get(key_label, "")
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def studio_of(feature: str) -> str:
    return FEATURE_PROVIDERS.get(feature, "other")


class Owner(commands.Cog):
    owner = app_commands.Group(
        name="owner",
        description="For the owner of this Easel: servers, studios and spend",
        default_permissions=discord.Permissions(administrator=True),
        extras={"audience": "owner"},  # /help lists it for the owner only
    )

    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[EaselBot]) -> bool:  # type: ignore[override]
        if not await is_owner(self.bot, interaction.user):
            raise NotAllowed(NOT_OWNER)
        return True

    async def _spend(self) -> SpendReport:
        return await spend_this_period(self.bot.db, self.bot.settings.quota_policy())

    async def _member_count(self, guild: discord.Guild) -> int | str:
        # Without the members intent the gateway's count is the one at connect time: ask for a fresh one.
        try:
            fresh = await self.bot.fetch_guild(guild.id, with_counts=True)
        except discord.HTTPException:
            fresh = guild
        count = fresh.approximate_member_count or guild.member_count
        return "?" if count is None else count

    @owner.command(name="servers", description="The servers Easel is in, with members and credits spent this period")
    async def servers(self, interaction: discord.Interaction[EaselBot]) -> None:
        await defer(interaction, ephemeral=True)
        spent = (await self._spend()).by_guild()
        guilds = sorted(self.bot.guilds, key=lambda g: (-spent.get(g.id, 0), g.name.lower()))
        shown = guilds[:MAX_SERVERS_LISTED]
        counts = await asyncio.gather(*(self._member_count(g) for g in shown))
        lines = []
        for guild, members in zip(shown, counts, strict=True):
            flag = "" if guild_allowed(self.bot.settings, guild.id) else " ⛔ not allowed"
            lines.append(f"**{guild.name}** `{guild.id}`: {members} members, {spent.get(guild.id, 0)} credits{flag}")
        if len(guilds) > MAX_SERVERS_LISTED:
            lines.append(f"… and {len(guilds) - MAX_SERVERS_LISTED} more")
        if spent.get(None):
            lines.append(f"**DMs**: {spent[None]} credits")
        embed = discord.Embed(
            title=f"Easel is in {len(guilds)} server{'s' if len(guilds) != 1 else ''}",
            description=("\n".join(lines) or "No servers yet.")[: limits.EMBED_DESCRIPTION_LIMIT],
            colour=discord.Colour.blurple(),
        )
        embed.set_footer(text="Credits: spent and held this period (each server's own period)")
        await respond(interaction, embed=embed, ephemeral=True)

    @owner.command(name="leave", description="Make Easel leave a server")
    @app_commands.describe(server_id="The server's id (see /owner servers)")
    async def leave(self, interaction: discord.Interaction[EaselBot], server_id: str) -> None:
        try:
            guild_id = int(server_id.strip())
        except ValueError:
            raise BadInput(f"`{server_id[:30]}` is not a server id: ids are numbers, see /owner servers.") from None
        guild = self.bot.get_guild(guild_id)
        if guild is None:
            raise BadInput(f"Easel is not in a server with id `{guild_id}`.")
        await defer(interaction, ephemeral=True)
        await guild.leave()
        again = (
            "It cannot add Easel back: it is not in ALLOWED_GUILD_IDS."
            if not guild_allowed(self.bot.settings, guild_id)
            else "Its admins can add Easel again; to prevent that, set ALLOWED_GUILD_IDS."
        )
        await respond(interaction, f"Easel left **{guild.name}** (`{guild_id}`). {again}", ephemeral=True)

    @owner.command(name="studios", description="Which studios are on, whether their keys are set, recent errors")
    async def studios(self, interaction: discord.Interaction[EaselBot]) -> None:
        metrics = self.bot.metrics
        failed = counter_totals(metrics.jobs, "provider", where={"state": ERROR_STATES})
        succeeded = counter_totals(metrics.jobs, "provider", where={"state": ("succeeded",)})
        request_errors = counter_totals(
            metrics.provider_requests, "provider", where={"outcome": ("error", "failed", "timeout")}
        )
        embed = discord.Embed(title="Studios", colour=discord.Colour.blurple())
        for name, key in PROVIDER_KEYS.items():
            keyed = name in self.bot.keyed_providers
            on = name in self.bot.enabled_providers
            if on:
                state = "✅ on"
            elif keyed:
                state = "⚠️ key set, but this version has no adapter for it: off"
            else:
                state = f"⛔ off: no key (set {key})"
            lines = [state]
            if on:
                lines.append(
                    f"Since start: {int(succeeded.get(name, 0))} jobs succeeded, {int(failed.get(name, 0))} failed "
                    f"or expired, {int(request_errors.get(name, 0))} request errors"
                )
            embed.add_field(name=PROVIDER_TITLES[name], value="\n".join(lines), inline=False)
        await respond(interaction, embed=embed, ephemeral=True)

    @owner.command(name="spend", description="Credits spent per studio this period, across every server")
    async def spend(self, interaction: discord.Interaction[EaselBot]) -> None:
        await defer(interaction, ephemeral=True)
        report = await self._spend()
        per_studio: dict[str, int] = {}
        per_feature = report.by_feature()
        for feature, credits in per_feature.items():
            per_studio[studio_of(feature)] = per_studio.get(studio_of(feature), 0) + credits
        lines = []
        for studio, credits in sorted(per_studio.items(), key=lambda item: -item[1]):
            title = PROVIDER_TITLES.get(studio, studio).split(" (")[0]
            features = ", ".join(
                f"{feature_name(f)} {c}" for f, c in sorted(per_feature.items()) if studio_of(f) == studio and c
            )
            lines.append(f"**{title}**: {credits} credits ({features})")
        embed = discord.Embed(
            title=f"Credits spent this period: {report.total}",
            description=("\n".join(lines) or "Nothing spent yet this period.")[: limits.EMBED_DESCRIPTION_LIMIT],
            colour=discord.Colour.blurple(),
        )
        embed.set_footer(text="Spent and held by running jobs, in each server's own period; refunds excluded")
        await respond(interaction, embed=embed, ephemeral=True)


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Owner(bot))
