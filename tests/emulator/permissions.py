"""Permission bits and Discord's resolution order (base roles, then channel overwrites)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
SPEAK = 1 << 21
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
USE_EXTERNAL_APPS = 1 << 50

ALL = (1 << 51) - 1

EVERYONE_DEFAULT = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | MENTION_EVERYONE
    | USE_EXTERNAL_EMOJIS
    | CONNECT
    | SPEAK
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
    | USE_EXTERNAL_APPS
)
BOT_ROLE_DEFAULT = EVERYONE_DEFAULT | MANAGE_MESSAGES
ADMIN_ROLE = ADMINISTRATOR | MANAGE_GUILD
# What Discord reports as app_permissions in a DM with the bot.
DM_APP_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY | ADD_REACTIONS
SEND_BLOCKED = SEND_MESSAGES | SEND_MESSAGES_IN_THREADS | ATTACH_FILES | EMBED_LINKS


def base_permissions(*, is_owner: bool, everyone: int, role_permissions: Iterable[int]) -> int:
    if is_owner:
        return ALL
    value = everyone
    for perms in role_permissions:
        value |= perms
    return ALL if value & ADMINISTRATOR else value


def apply_overwrites(
    base: int, *, guild_id: int, user_id: int, role_ids: Iterable[int], overwrites: list[dict[str, Any]]
) -> int:
    """Discord's order: @everyone overwrite, then all role overwrites together, then the member's own."""
    if base & ADMINISTRATOR or base == ALL:
        return base
    by_id = {int(o["id"]): o for o in overwrites}
    value = base
    everyone = by_id.get(guild_id)
    if everyone is not None:
        value = (value & ~int(everyone["deny"])) | int(everyone["allow"])
    allow = deny = 0
    for role_id in role_ids:
        overwrite = by_id.get(role_id)
        if overwrite is not None and overwrite["type"] == 0:
            allow |= int(overwrite["allow"])
            deny |= int(overwrite["deny"])
    value = (value & ~deny) | allow
    own = by_id.get(user_id)
    if own is not None and own["type"] == 1:
        value = (value & ~int(own["deny"])) | int(own["allow"])
    return value
