"""/help: every command this member can use here, one line each, with what it costs on this server.

Read from the command tree (so it stays true as commands change) and filtered the way Discord shows them
(contexts, default_member_permissions); the cost comes from the ledger for commands that declare their
feature with `extras={"feature": "..."}`. `extras={"audience": "owner"}` marks commands for the bot's owner.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits
from bot.access import is_owner
from bot.app import EaselBot
from bot.tree import respond
from cogs.quota import UNITS, credit_text

GUILD_CONTEXT, DM_CONTEXT = 0, 1
AnyCommand = app_commands.Command[Any, ..., Any] | app_commands.Group


@dataclass(frozen=True)
class Entry:
    line: str
    audience: str  # "member", "admin" or "owner"


def feature_of(command: app_commands.Command[Any, ..., Any]) -> str | None:
    """The charged feature a command declares, on itself or on a group above it."""
    node: AnyCommand | None = command
    while node is not None:
        feature = node.extras.get("feature")
        if isinstance(feature, str):
            return feature
        node = node.parent
    return None


def leaves(root: AnyCommand) -> Iterator[app_commands.Command[Any, ..., Any]]:
    if isinstance(root, app_commands.Group):
        for child in root.commands:
            yield from leaves(child)
    else:
        yield root


def offered(schema: Mapping[str, Any], *, in_guild: bool, permissions: discord.Permissions) -> bool:
    """Whether Discord offers a top-level command here, from the schema Easel syncs."""
    contexts = schema.get("contexts")
    if contexts is not None and (GUILD_CONTEXT if in_guild else DM_CONTEXT) not in contexts:
        return False
    if not in_guild:
        return schema.get("dm_permission", True) is not False
    required = schema.get("default_member_permissions")
    if required is None or permissions.administrator:
        return True
    needed = discord.Permissions(int(required))
    return int(required) != 0 and needed <= permissions


def cost_text(feature: str | None, costs: Mapping[str, int]) -> str:
    if feature is None or feature not in costs:
        return ""
    cost = costs[feature]
    return " · free here" if cost == 0 else f" · {credit_text(cost)} per {UNITS.get(feature, 'image')}"


class Help(commands.Cog):
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot

    async def _costs(self, guild_id: int | None) -> Mapping[str, int]:
        costs = getattr(self.bot.ledger, "costs", None)  # a ledger without costs (FreeLedger) charges nothing
        if costs is None:
            return {}
        result: Mapping[str, int] = await costs(guild_id)
        return result

    def _roots(self, guild_id: int | None) -> list[AnyCommand]:
        found: dict[str, AnyCommand] = {}
        scopes = [None] if guild_id is None else [discord.Object(guild_id), None]
        for scope in scopes:  # a server's own copies (DEV_GUILD_ID) shadow the global ones, as in Discord
            for command in self.bot.tree.get_commands(guild=scope, type=discord.AppCommandType.chat_input):
                if isinstance(command, app_commands.Command | app_commands.Group):
                    found.setdefault(command.name, command)
        return sorted(found.values(), key=lambda c: c.name)

    async def entries(self, interaction: discord.Interaction[EaselBot]) -> list[Entry]:
        in_guild = interaction.guild_id is not None
        costs = await self._costs(interaction.guild_id)
        owner = await is_owner(self.bot, interaction.user)
        entries = []
        for root in self._roots(interaction.guild_id):
            schema = root.to_dict(self.bot.tree)
            audience = "owner" if root.extras.get("audience") == "owner" else "member"
            if audience == "owner" and not owner:
                continue
            if audience != "owner" and not offered(schema, in_guild=in_guild, permissions=interaction.permissions):
                continue
            if audience == "member" and schema.get("default_member_permissions") is not None:
                audience = "admin"
            for command in leaves(root):
                cost = cost_text(feature_of(command), costs)
                entries.append(Entry(f"`/{command.qualified_name}` {command.description}{cost}", audience))
        for kind, where in ((discord.AppCommandType.message, "a message"), (discord.AppCommandType.user, "a member")):
            for menu in self.bot.tree.get_commands(type=kind):
                schema = menu.to_dict(self.bot.tree)
                if offered(schema, in_guild=in_guild, permissions=interaction.permissions):
                    entries.append(Entry(f"**{menu.name}**: in the Apps menu of {where}", "member"))
        return entries

    @app_commands.command(name="help", description="Every command you can use here, and what each costs")
    async def help(self, interaction: discord.Interaction[EaselBot]) -> None:
        entries = await self.entries(interaction)
        embed = discord.Embed(title="Easel commands you can use here", colour=discord.Colour.blurple())
        sections = (
            ("member", None),
            ("admin", "**For server admins**"),
            ("owner", "**For the owner of this Easel**"),
        )
        parts = []
        for audience, heading in sections:
            lines = [e.line for e in entries if e.audience == audience]
            if lines:
                parts.append("\n".join([heading, *lines] if heading else lines))
        text = "\n\n".join(parts) or "No commands are available to you here."
        embed.description = text[: limits.EMBED_DESCRIPTION_LIMIT]
        if interaction.guild_id is not None:
            embed.set_footer(text="Costs are this server's, in credits; /quota shows what you have left.")
        await respond(interaction, embed=embed, ephemeral=True)


async def setup(bot: EaselBot) -> None:
    await bot.add_cog(Help(bot))
