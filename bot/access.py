"""Who may use this Easel: which servers (ALLOWED_GUILD_IDS), paid features in DMs, and the bot's owners.

Every server that adds the bot spends the owner's studio credits, so the owner decides where it runs:
servers not on the list are left at start and as soon as they add the bot, and their interactions (which
can still arrive from a server that added only the commands scope) are refused by `paid_feature_allowed`.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import discord
from discord.ext import commands

from bot.errors import NotAllowed
from bot.settings import Settings

log = logging.getLogger(__name__)

DM_PAID_OFF = "Easel's paid features work in servers, not in DMs: run this command in a server you share with the bot."
GUILD_NOT_ALLOWED = "Easel is not enabled for this server: its owner runs it for other servers only."


class HasSettings(Protocol):
    settings: Settings


def guild_allowed(settings: Settings, guild_id: int) -> bool:
    """Blank ALLOWED_GUILD_IDS: any server; otherwise only those listed."""
    allowed = settings.allowed_guild_ids
    return allowed is None or guild_id in allowed


def open_to_everyone_warning(settings: Settings, application: discord.AppInfo | None) -> str | None:
    """The start-up warning for a public application with no server list, or None when nothing is wrong."""
    if settings.allowed_guild_ids is not None or application is None or not application.bot_public:
        return None
    return (
        "This application is public and ALLOWED_GUILD_IDS is blank: anyone can add the bot to any server, and "
        "every server that does spends your studio credits. Set ALLOWED_GUILD_IDS to your server ids, or turn "
        "off Public Bot (Developer Portal -> your application -> Bot)."
    )


async def leave_if_not_allowed(settings: Settings, guild: discord.Guild, *, when: str) -> bool:
    """Leave `guild` if it is not allowed; returns whether the bot left (or tried to)."""
    if guild_allowed(settings, guild.id):
        return False
    log.warning(
        "Leaving server %s (%s, %s): it is not in ALLOWED_GUILD_IDS (%s)",
        guild.name,
        guild.id,
        when,
        ", ".join(str(i) for i in settings.allowed_guild_ids or ()),
    )
    try:
        await guild.leave()
    except discord.HTTPException as exc:
        log.error("Could not leave server %s: %s", guild.id, exc)
    return True


async def leave_servers_not_allowed(client: discord.Client, settings: Settings) -> list[int]:
    """At start: leave every server the bot is in that is not allowed; returns their ids."""
    left = []
    for guild in list(client.guilds):
        if await leave_if_not_allowed(settings, guild, when="found at start"):
            left.append(guild.id)
    return left


def paid_feature_allowed(interaction: discord.Interaction[Any]) -> str | None:
    """Why this interaction may not start a paid job, as a message for the member; None when it may.

    Servers not in ALLOWED_GUILD_IDS never may; DMs only with DM_PAID_FEATURES=true (then the QUOTA_DM_*
    policy charges them)."""
    settings: Settings = interaction.client.settings
    if interaction.guild_id is None:
        return None if settings.dm_paid_features else DM_PAID_OFF
    if not guild_allowed(settings, interaction.guild_id):
        return GUILD_NOT_ALLOWED
    return None


def require_paid_feature(interaction: discord.Interaction[Any]) -> None:
    """Raise NotAllowed (shown to the member by the command tree) when `paid_feature_allowed` refuses."""
    reason = paid_feature_allowed(interaction)
    if reason is not None:
        raise NotAllowed(reason)


async def is_owner(client: discord.Client, user: discord.abc.User) -> bool:
    """The application's owner, or a member of its team (admins and developers), per application_info.

    Never Discord permissions: a server admin is not the person who pays for the studios."""
    if not isinstance(client, commands.bot.BotBase):  # Bot and AutoShardedBot
        return False
    return await client.is_owner(user)
