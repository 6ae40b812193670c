"""Who may do what, checked by the bot itself (Discord's command permissions can be loosened by admins)."""

from __future__ import annotations

from typing import Any

import discord


def is_server_admin(interaction: discord.Interaction[Any]) -> bool:
    if interaction.guild_id is None:
        return False
    permissions = interaction.permissions
    return permissions.administrator or permissions.manage_guild


def can_moderate_results(interaction: discord.Interaction[Any]) -> bool:
    return is_server_admin(interaction) or interaction.permissions.manage_messages
