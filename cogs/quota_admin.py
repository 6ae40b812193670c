"""/quota-admin: allowances, grants, blocks, costs, the server budget and the usage report.

Discord hides these from members without Manage Server (default_permissions), but a server can loosen
that in its integration settings, so every command is also checked here (`interaction_check`).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits
from bot.app import EaselBot
from bot.errors import BadInput, NotAllowed
from bot.permissions import is_server_admin
from bot.quotas import DEFAULT_COSTS, QuotaLedger, UsageReport, UsageRow
from bot.quotas.state import GuildSettings, guild_key, load_guild_settings
from bot.tree import defer, respond
from cogs.quota import (
    FEATURE_NAMES,
    FEATURE_PROVIDERS,
    UNITS,
    balance_embed,
    credit_text,
    feature_name,
    plural,
    quota_ledger,
    role_ids,
    this_period,
)

MAX_CREDITS = 1_000_000  # an upper bound on every credit option: bigger is a typo, not a policy
NOTE_MAX = 200
PeriodName = Literal["daily", "weekly", "monthly"]

FEATURE_CHOICES = [
    app_commands.Choice(name=f"{FEATURE_NAMES[f]} ({f})"[:100], value=f)
    for f in FEATURE_PROVIDERS
    if f in DEFAULT_COSTS
][: limits.CHOICES_PER_OPTION]

CreditsOption = app_commands.Range[int, 0, MAX_CREDITS]
GrantOption = app_commands.Range[int, 1, MAX_CREDITS]
NoteOption = app_commands.Range[str, 1, NOTE_MAX]


def schedule_text(settings: GuildSettings) -> str:
    when = {"daily": "every day", "weekly": "every Monday", "monthly": "on the 1st of every month"}
    return f"{when[settings.period.value]} at {settings.reset_hour:02d}:00 UTC"


def not_a_bot(member: discord.Member | discord.User) -> None:
    if member.bot:
        raise BadInput(f"{member.mention} is a bot: bots do not use credits.")


def usage_line(row: UsageRow) -> str:
    who = "Erased members" if row.user_id is None else f"<@{row.user_id}>"
    text = f"{who}: **{row.spent}** spent"
    if row.reserved:
        text += f", **{row.reserved}** held"
    if row.refunded:
        text += f", {row.refunded} refunded"
    if row.granted:
        text += f", {row.granted} granted"
    return f"{text} ({plural(row.jobs, 'job')})"


def report_embed(report: UsageReport, top: int) -> discord.Embed:
    embed = discord.Embed(title=f"Credits used {this_period(report.period)}", colour=discord.Colour.blurple())
    spenders = [row for row in report.rows if row.jobs or row.granted][:top]
    lines = [f"{index}. {usage_line(row)}" for index, row in enumerate(spenders, start=1)]
    embed.description = ("\n".join(lines) or "Nobody has used any credits yet.")[: limits.EMBED_DESCRIPTION_LIMIT]
    total = report.total
    embed.add_field(
        name="Total",
        value=f"**{total.spent}** spent, **{total.reserved}** held by running jobs, {total.refunded} refunded, "
        f"{total.granted} granted; {plural(total.jobs, 'job')}",
        inline=False,
    )
    if report.budget is not None:
        embed.add_field(name="Server budget left", value=f"**{report.budget_left}** of {report.budget}")
    else:
        embed.add_field(name="Server budget", value="none set")
    embed.add_field(name="Period", value=f"since <t:{report.period_start}:f>, resets <t:{report.resets_at}:R>")
    embed.set_footer(text="Every member's line is in the attached CSV.")
    return embed


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class QuotaAdmin(
    commands.GroupCog,
    group_name="quota-admin",
    group_description="Credits in this server: allowances, grants, blocks, costs, budget, usage",
):
    allowance = app_commands.Group(name="allowance", description="How many credits members get per period")

    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[EaselBot]) -> bool:  # type: ignore[override]
        # Discord's default_permissions can be loosened by a server: this check cannot.
        if not is_server_admin(interaction):
            raise NotAllowed("Only server admins (Manage Server) can change or see Easel's credit settings.")
        return True

    def _scope(self, interaction: discord.Interaction[EaselBot]) -> tuple[QuotaLedger, int]:
        if interaction.guild_id is None:  # guild_only already keeps these out of DMs
            raise NotAllowed("Credit settings belong to a server: use this command in one.")
        return quota_ledger(self.bot), interaction.guild_id

    async def _settings(self, ledger: QuotaLedger, guild_id: int) -> GuildSettings:
        return await self.bot.db.read(lambda conn: load_guild_settings(conn, ledger.policy, guild_key(guild_id)))

    # Allowances

    @allowance.command(name="server", description="Credits per period for members without a role or member allowance")
    @app_commands.describe(
        credits="Credits per period (leave out to keep the current number)",
        period="How often allowances reset",
        reset_hour="Hour of the reset, 0-23 UTC",
        clear="Go back to Easel's default allowance",
    )
    async def allowance_server(
        self,
        interaction: discord.Interaction[EaselBot],
        credits: CreditsOption | None = None,
        period: PeriodName | None = None,
        reset_hour: app_commands.Range[int, 0, 23] | None = None,
        clear: bool = False,
    ) -> None:
        ledger, guild_id = self._scope(interaction)
        if clear and credits is not None:
            raise BadInput("Give `credits` or `clear`, not both.")
        if credits is None and period is None and reset_hour is None and not clear:
            raise BadInput("Say what to change: `credits`, `period`, `reset_hour`, or `clear` to use the default.")
        before = await self._settings(ledger, guild_id)
        if credits is not None or clear:
            await ledger.set_default_allowance(guild_id, credits)
        new_start = False
        if period is not None or reset_hour is not None:
            new_period = period or before.period.value
            new_hour = before.reset_hour if reset_hour is None else reset_hour
            if (new_period, new_hour) != (before.period.value, before.reset_hour):
                await ledger.set_period(guild_id, new_period, new_hour)
                new_start = True
        after = await self._settings(ledger, guild_id)
        report = await ledger.usage_report(guild_id)
        text = (
            f"✅ Members without a role or member allowance get **{credit_text(after.allowance)}** per "
            f"{after.period.noun}{' (the default)' if clear else ''}, reset {schedule_text(after)} "
            f"(next <t:{report.resets_at}:R>)."
        )
        if new_start:
            text += " A new period starts now: what members used before no longer counts against it."
        await respond(interaction, text)

    @allowance.command(
        name="role", description="Credits per period for members with a role (they get their best role's)"
    )
    @app_commands.describe(role="The role", credits="Credits per period", clear="Remove this role's allowance")
    async def allowance_role(
        self,
        interaction: discord.Interaction[EaselBot],
        role: discord.Role,
        credits: CreditsOption | None = None,
        clear: bool = False,
    ) -> None:
        ledger, guild_id = self._scope(interaction)
        value = _set_or_clear(credits, clear)
        await ledger.set_role_allowance(guild_id, role.id, value)
        settings = await self._settings(ledger, guild_id)
        if value is None:
            text = f"✅ {role.mention} no longer has an allowance of its own."
        else:
            text = (
                f"✅ Members with {role.mention} get **{credit_text(value)}** per {settings.period.noun} "
                "(a member with several roles gets the best of them; a member allowance wins over roles)."
            )
        await respond(interaction, text, allowed_mentions=discord.AllowedMentions.none())

    @allowance.command(name="member", description="Credits per period for one member, whatever their roles")
    @app_commands.describe(member="The member", credits="Credits per period", clear="Remove their own allowance")
    async def allowance_member(
        self,
        interaction: discord.Interaction[EaselBot],
        member: discord.Member,
        credits: CreditsOption | None = None,
        clear: bool = False,
    ) -> None:
        ledger, guild_id = self._scope(interaction)
        not_a_bot(member)
        value = _set_or_clear(credits, clear)
        await ledger.set_member_allowance(guild_id, member.id, value)
        settings = await self._settings(ledger, guild_id)
        if value is None:
            text = f"✅ {member.mention} is back to their roles' or the server's allowance."
        else:
            text = (
                f"✅ {member.mention} gets **{credit_text(value)}** per {settings.period.noun}, whatever their roles."
            )
        await respond(interaction, text, allowed_mentions=discord.AllowedMentions.none())

    # One member

    @app_commands.command(name="grant", description="Give a member bonus credits (they do not reset)")
    @app_commands.describe(member="The member", credits="Bonus credits to add", note="Why (kept in the ledger)")
    async def grant(
        self,
        interaction: discord.Interaction[EaselBot],
        member: discord.Member,
        credits: GrantOption,
        note: NoteOption | None = None,
    ) -> None:
        ledger, guild_id = self._scope(interaction)
        not_a_bot(member)
        bonus = await ledger.grant(guild_id, member.id, credits, by=interaction.user.id, note=note or "")
        text = (
            f"✅ Granted **{credit_text(credits)}** to {member.mention}"
            + (f" ({note})" if note else "")
            + f". They now have **{bonus}** bonus credits, spent after their allowance."
        )
        await respond(interaction, text, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="refill", description="Give a member back the allowance they used this period")
    @app_commands.describe(member="The member", note="Why (kept in the ledger)")
    async def refill(
        self, interaction: discord.Interaction[EaselBot], member: discord.Member, note: NoteOption | None = None
    ) -> None:
        ledger, guild_id = self._scope(interaction)
        not_a_bot(member)
        restored = await ledger.reset_member(guild_id, member.id, by=interaction.user.id, note=note or "")
        if restored:
            text = f"✅ Gave {member.mention} back **{credit_text(restored)}** of their allowance for this period."
        else:
            text = f"{member.mention} has used none of this period's allowance (credits held by running jobs stay)."
        await respond(interaction, text, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="block", description="Stop a member from using paid features here")
    @app_commands.describe(member="The member", reason="Why (kept for the admins)")
    async def block(
        self, interaction: discord.Interaction[EaselBot], member: discord.Member, reason: NoteOption | None = None
    ) -> None:
        ledger, guild_id = self._scope(interaction)
        not_a_bot(member)
        await ledger.block(guild_id, member.id, by=interaction.user.id, reason=reason or "")
        text = (
            f"⛔ {member.mention} is blocked from Easel's paid features here"
            + (f" (reason: {reason})" if reason else "")
            + ". Jobs already running finish normally; `/quota-admin unblock` lifts it."
        )
        await respond(interaction, text, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="unblock", description="Let a blocked member use paid features again")
    @app_commands.describe(member="The member")
    async def unblock(self, interaction: discord.Interaction[EaselBot], member: discord.Member) -> None:
        ledger, guild_id = self._scope(interaction)
        if await ledger.unblock(guild_id, member.id):
            text = f"✅ {member.mention} is unblocked and can use Easel's paid features again."
        else:
            text = f"{member.mention} was not blocked: nothing changed."
        await respond(interaction, text, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="view", description="See a member's credits as they see them")
    @app_commands.describe(member="The member")
    async def view(self, interaction: discord.Interaction[EaselBot], member: discord.Member) -> None:
        ledger, guild_id = self._scope(interaction)
        balance = await ledger.balance(guild_id, member.id, role_ids(member))
        costs = await ledger.costs(guild_id)
        embed = balance_embed(
            balance, costs, self.bot.enabled_providers, title=f"Credits of {member.display_name}", in_dms=False
        )
        await respond(interaction, embed=embed)

    # The server

    @app_commands.command(name="cost", description="Set what a feature costs here, per image (or clear to the default)")
    @app_commands.describe(
        feature="The feature", credits="Credits per image (or per training/video)", clear="Use the default"
    )
    @app_commands.choices(feature=FEATURE_CHOICES)
    async def cost(
        self,
        interaction: discord.Interaction[EaselBot],
        feature: str,
        credits: CreditsOption | None = None,
        clear: bool = False,
    ) -> None:
        ledger, guild_id = self._scope(interaction)
        value = _set_or_clear(credits, clear)
        await ledger.set_cost(guild_id, feature, value)  # an unknown feature is a BadInput from the ledger
        now = (await ledger.costs(guild_id))[feature]
        unit = UNITS.get(feature, "image")
        default = ledger.policy.cost(feature)
        text = f"✅ {feature_name(feature)} now costs **{credit_text(now)}** per {unit} here"
        text += " (the default)." if value is None else f" (default {default})."
        await respond(interaction, text)

    @app_commands.command(name="budget", description="Cap what all members together spend per period (or clear)")
    @app_commands.describe(credits="Credits per period for everyone together", clear="Remove the cap")
    async def budget(
        self, interaction: discord.Interaction[EaselBot], credits: CreditsOption | None = None, clear: bool = False
    ) -> None:
        ledger, guild_id = self._scope(interaction)
        value = _set_or_clear(credits, clear)
        await ledger.set_budget(guild_id, value)
        report = await ledger.usage_report(guild_id)
        noun = report.period.noun
        if value is None:
            text = (
                "✅ No server budget: members are limited only by their own allowances "
                f"({report.budget_used} used {this_period(report.period)})."
            )
        else:
            text = (
                f"✅ All members together can spend at most **{credit_text(value)}** per {noun} here; "
                f"**{report.budget_left}** left {this_period(report.period)} (resets <t:{report.resets_at}:R>)."
            )
        await respond(interaction, text)

    @app_commands.command(name="report", description="Usage this period: top members, totals, budget left, and a CSV")
    @app_commands.describe(top="How many members to list (the CSV has everyone)")
    async def report(
        self, interaction: discord.Interaction[EaselBot], top: app_commands.Range[int, 1, 25] = 10
    ) -> None:
        ledger, guild_id = self._scope(interaction)
        await defer(interaction, ephemeral=True)
        report = await ledger.usage_report(guild_id)
        data = await ledger.usage_csv(guild_id)
        day = datetime.fromtimestamp(report.period_start, UTC).strftime("%Y-%m-%d")
        file = discord.File(io.BytesIO(data), filename=f"easel-usage-{guild_id}-{day}.csv")
        await respond(
            interaction, embed=report_embed(report, top), file=file, allowed_mentions=discord.AllowedMentions.none()
        )


def _set_or_clear(value: int | None, clear: bool) -> int | None:
    if clear and value is not None:
        raise BadInput("Give `credits` or `clear`, not both.")
    if not clear and value is None:
        raise BadInput("Give `credits`, or `clear: True` to remove the setting.")
    return value


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(QuotaAdmin(bot))
