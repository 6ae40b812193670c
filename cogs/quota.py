"""/quota (my credits, what things cost here, when they reset) and /forget-me (erase my data here)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits
from bot.app import EaselBot
from bot.delivery import FEATURE_TITLES
from bot.errors import FeatureUnavailable, NotAllowed
from bot.quotas import Balance, Period, QuotaLedger
from bot.tree import defer, respond

BUTTON_PREFIX = "eq"  # custom_id = "eq:<action>:<user id>": the member the confirmation was shown to

# Which provider serves each charged feature: the cost table lists only features someone can use here.
FEATURE_PROVIDERS: Mapping[str, str] = {
    "coloring": "mimipanda",
    "ai_coloring": "mimipanda",
    "pbn": "mimipanda",
    "ai_image": "mimipanda",
    "upscale": "mimipanda",
    "filter": "mimipanda",
    "portrait_training": "mimpi",
    "portrait": "mimpi",
    "style_training": "flair",
    "style_image": "flair",
    "imagine_image": "imagine",
    "imagine_edit": "imagine",
    "imagine_upscale": "imagine",
    "imagine_video": "imagine",
    "local_coloring": "local",
    "local_pbn": "local",
    "local_upscale": "local",
    "local_filter": "local",
}

# Names for the cost table when the feature's cog has not registered a title of its own.
FEATURE_NAMES: Mapping[str, str] = {
    "coloring": "Coloring page",
    "ai_coloring": "AI coloring page",
    "pbn": "Paint by numbers",
    "ai_image": "AI image",
    "upscale": "Upscale",
    "filter": "Photo filter",
    "portrait_training": "Portrait model training",
    "portrait": "Portrait",
    "style_training": "Style model training",
    "style_image": "Style image",
    "imagine_image": "Imagine image",
    "imagine_edit": "Imagine edit",
    "imagine_upscale": "Imagine upscale",
    "imagine_video": "Imagine video",
    "local_coloring": "Coloring page (Easel's studio)",
    "local_pbn": "Paint-by-numbers (Easel's studio)",
    "local_upscale": "Upscale (Easel's studio)",
    "local_filter": "Photo filter (Easel's studio)",
}

UNITS: Mapping[str, str] = {
    "portrait_training": "training",
    "style_training": "training",
    "imagine_video": "video",
}


def feature_name(feature: str) -> str:
    # The cost table's own names first: they tell studios apart ("Coloring page (Easel's studio)").
    return FEATURE_NAMES.get(feature) or FEATURE_TITLES.get(feature, feature)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def credit_text(n: int) -> str:
    return plural(n, "credit")


def this_period(period: Period) -> str:
    """ "today", "this week", "this month"."""
    return "today" if period is Period.DAILY else f"this {period.noun}"


def quota_ledger(bot: EaselBot) -> QuotaLedger:
    """The ledger, or a clear message when this Easel runs without quotas (a FreeLedger)."""
    if not isinstance(bot.ledger, QuotaLedger):
        raise FeatureUnavailable("Credits are not tracked in this Easel: everything is free here.")
    return bot.ledger


def role_ids(user: discord.User | discord.Member) -> list[int]:
    # The same list the job engine charges with, so /quota shows what a job would see.
    return [role.id for role in user.roles] if isinstance(user, discord.Member) else []


def cost_lines(costs: Mapping[str, int], enabled_providers: Collection[str]) -> list[str]:
    lines = []
    for feature, provider in FEATURE_PROVIDERS.items():
        if provider in enabled_providers and feature in costs:
            unit = UNITS.get(feature, "image")
            lines.append(f"{feature_name(feature)}: **{credit_text(costs[feature])}** per {unit}")
    return lines


def balance_embed(
    balance: Balance,
    costs: Mapping[str, int],
    enabled_providers: Collection[str],
    *,
    title: str,
    in_dms: bool,
) -> discord.Embed:
    """A member's balance as they (or an admin looking at them) see it."""
    noun = balance.period.noun
    embed = discord.Embed(
        title=title,
        description=f"**{balance.available}** available now",
        colour=discord.Colour.red() if balance.blocked else discord.Colour.blurple(),
    )
    if balance.blocked:
        where = "in DMs" if in_dms else "in this server"
        embed.add_field(
            name="Status", value=f"⛔ Blocked from Easel's paid features {where}: nothing can be spent.", inline=False
        )
    embed.add_field(name="Allowance", value=f"**{balance.allowance}** per {noun}")
    embed.add_field(name=f"Used {this_period(balance.period)}", value=f"**{balance.spent}**")
    embed.add_field(name="Held by running jobs", value=f"**{balance.reserved}**")
    embed.add_field(name="Bonus credits", value=f"**{balance.bonus}** (they do not reset)")
    if balance.budget_left is not None:
        whose = "DM budget left (shared)" if in_dms else "Server budget left (shared)"
        embed.add_field(name=whose, value=f"**{balance.budget_left}**")
    embed.add_field(name="Resets", value=f"<t:{balance.resets_at}:R> (<t:{balance.resets_at}:f>)")
    lines = cost_lines(costs, enabled_providers)
    if lines:
        table = "\n".join(lines)[: limits.EMBED_FIELD_VALUE_LIMIT]
    else:
        table = "No image service is switched on in this Easel yet, so there is nothing to spend credits on."
    embed.add_field(name="Costs here" if not in_dms else "Costs in DMs", value=table, inline=False)
    embed.set_footer(text="Failed or cancelled jobs are refunded automatically.")
    return embed


def forget_buttons(user_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(
        discord.ui.Button(
            label="Erase my data",
            emoji="🧹",
            style=discord.ButtonStyle.danger,
            custom_id=f"{BUTTON_PREFIX}:forget:{user_id}",
        )
    )
    view.add_item(
        discord.ui.Button(
            label="Keep it", style=discord.ButtonStyle.secondary, custom_id=f"{BUTTON_PREFIX}:keep:{user_id}"
        )
    )
    return view


class Quota(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        bot.components.register(BUTTON_PREFIX, "forget", self.on_forget)
        bot.components.register(BUTTON_PREFIX, "keep", self.on_keep)

    async def cog_unload(self) -> None:
        self.bot.components.unregister(BUTTON_PREFIX, "forget")
        self.bot.components.unregister(BUTTON_PREFIX, "keep")

    @app_commands.command(name="quota", description="Your credits: what is left, what things cost here, when it resets")
    async def quota(self, interaction: discord.Interaction[EaselBot]) -> None:
        ledger = quota_ledger(self.bot)
        guild_id = interaction.guild_id
        balance = await ledger.balance(guild_id, interaction.user.id, role_ids(interaction.user))
        costs = await ledger.costs(guild_id)
        in_dms = guild_id is None
        title = "Your credits in DMs with Easel" if in_dms else "Your credits in this server"
        embed = balance_embed(balance, costs, self.bot.enabled_providers, title=title, in_dms=in_dms)
        await respond(interaction, embed=embed, ephemeral=True)

    @app_commands.command(name="forget-me", description="Erase your jobs, images and credit history here, for good")
    async def forget_me(self, interaction: discord.Interaction[EaselBot]) -> None:
        guild_id, user_id = interaction.guild_id, interaction.user.id
        jobs = await self.bot.jobs.store.for_member(guild_id, user_id, limit=1_000_000)
        running = await self.bot.jobs.store.active_for_member(guild_id, user_id)
        where = "in DMs with Easel" if guild_id is None else "in this server"
        text = (
            f"This erases your data {where}, for good: **{plural(len(jobs), 'job')}**"
            + (
                f" (**{len(running)}** still running: stopped and refunded first where the image service can "
                "stop them; the others finish unseen and are erased then)"
                if running
                else ""
            )
            + ", their images and inputs, and your credit balance and history. The server's totals keep "
            "your spending without your name. Results already posted in channels stay until you delete them."
        )
        await respond(interaction, text, ephemeral=True, view=forget_buttons(user_id))

    def _check_presser(self, interaction: discord.Interaction[EaselBot], target: str) -> None:
        if target != str(interaction.user.id):
            raise NotAllowed("This button belongs to someone else's /forget-me.")

    async def on_forget(self, interaction: discord.Interaction[EaselBot], target: str, _arg: str | None) -> None:
        self._check_presser(interaction, target)
        # Cancelling running jobs talks to providers: acknowledge now, then replace the question with the answer.
        await defer(interaction, thinking=False)
        guild_id, user_id = interaction.guild_id, interaction.user.id
        jobs, stopped = await self.bot.jobs.erase_member(guild_id, user_id)
        for erase in self.bot.member_data_erasers:  # e.g. portrait training sets and their photos
            await erase(guild_id, user_id)
        entries = 0
        blocked = False
        if isinstance(self.bot.ledger, QuotaLedger):
            blocked = (await self.bot.ledger.balance(guild_id, user_id, [])).blocked
            entries = await self.bot.ledger.erase_member(guild_id, user_id)
        lines = [
            f"🧹 Erased **{plural(jobs, 'job')}**"
            + (f" (**{stopped}** running ones cancelled and refunded first)" if stopped else "")
            + " with their images and inputs, and your credit balance and history "
            f"(**{entries}** entries anonymised).",
        ]
        if blocked:
            lines.append("A server admin's block stays in place: it is a moderation record, not your data.")
        await interaction.edit_original_response(content="\n".join(lines), view=None)

    async def on_keep(self, interaction: discord.Interaction[EaselBot], target: str, _arg: str | None) -> None:
        self._check_presser(interaction, target)
        await defer(interaction, thinking=False)
        await interaction.edit_original_response(content="Nothing was erased.", view=None)


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Quota(bot))
