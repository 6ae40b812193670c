"""INTERACTION_CREATE payloads with every field discord.py 2.7 reads (missing ones kill the gateway reader)."""

from __future__ import annotations

from typing import Any

from .guild import Guild
from .models import Channel, Member

GUILD_CONTEXT, BOT_DM_CONTEXT = 0, 1
GUILD_INSTALL = "0"


def interaction_create(
    *,
    interaction_id: int,
    token: str,
    kind: int,
    application_id: int,
    data: dict[str, Any],
    guild: Guild,
    user: Member,
    channel: Channel,
    in_guild: bool,
    attachment_size_limit: int,
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(interaction_id),
        "application_id": str(application_id),
        "type": kind,
        "token": token,
        "version": 1,
        "data": data,
        "channel_id": str(channel.id),
        "locale": user.locale,
        "app_permissions": str(guild.channel_permissions(guild.bot, channel)),
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": attachment_size_limit,
    }
    if in_guild:
        payload.update(
            {
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
                "guild_locale": "en-US",
                "member": guild.member_payload(user, channel),
                "channel": guild.channel_payload(channel, viewer=user),
                "context": GUILD_CONTEXT,
                "authorizing_integration_owners": {GUILD_INSTALL: str(guild.id)},
            }
        )
    else:
        payload.update(
            {
                "user": user.user,
                "channel": channel.payload(),
                "context": BOT_DM_CONTEXT,
                "authorizing_integration_owners": {GUILD_INSTALL: "0"},
            }
        )
    if message is not None:
        payload["message"] = message
    return payload


def interaction_metadata(
    *,
    interaction_id: int,
    kind: int,
    user: Member,
    guild_id: int | None,
    name: str | None,
    command_type: int | None,
    interacted_message_id: int | None = None,
    original_response_message_id: int | None = None,
) -> dict[str, Any]:
    """What Discord attaches to messages created by an interaction (Message.interaction_metadata)."""
    owners = {GUILD_INSTALL: str(guild_id) if guild_id else "0"}
    meta: dict[str, Any] = {
        "id": str(interaction_id),
        "type": kind,
        "user": user.user,
        "authorizing_integration_owners": owners,
    }
    if name is not None:
        meta["name"] = name
    if command_type is not None:
        meta["command_type"] = command_type
    if interacted_message_id is not None:
        meta["interacted_message_id"] = str(interacted_message_id)
    if original_response_message_id is not None:
        meta["original_response_message_id"] = str(original_response_message_id)
    return meta
