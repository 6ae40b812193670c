"""The content rules as a job-engine admission check: refuse a job before anything is stored or spent."""

from __future__ import annotations

from typing import Any

import discord

from bot.content.features import group_of, group_title
from bot.content.matching import prompt_texts
from bot.content.store import SERVER, ContentStore
from bot.errors import BadInput, NotAllowed


def channel_chain(channel: object, channel_id: int | None) -> tuple[int, ...]:
    """The interaction's channel, then its parent (a thread follows its channel's switches)."""
    ids: list[int] = [channel_id] if channel_id else []
    parent_id = getattr(channel, "parent_id", None)
    if isinstance(channel, discord.Thread) and isinstance(parent_id, int):
        ids.append(parent_id)
    return tuple(ids)


def is_age_restricted(channel: object) -> bool:
    """The channel's NSFW flag (a thread's comes from its channel); unknown channels count as not."""
    check = getattr(channel, "is_nsfw", None)
    return bool(check()) if callable(check) else False


class ContentCheck:
    """`check(interaction, *, feature, provider, params)` for JobEngine.admission_checks."""

    def __init__(self, store: ContentStore, *, dm_age_restricted_only: bool = False) -> None:
        self.store = store
        self.dm_age_restricted_only = dm_age_restricted_only

    async def __call__(
        self, interaction: discord.Interaction[Any], *, feature: str, provider: str, params: dict[str, Any]
    ) -> None:
        guild_id = interaction.guild_id
        if guild_id is None:
            if self.dm_age_restricted_only:
                raise NotAllowed("This Easel makes images only in servers' age-restricted channels, so not in DMs.")
            return
        rules = await self.store.rules_for(guild_id)
        group = group_of(feature)
        switch = rules.feature_switch(group, channel_chain(interaction.channel, interaction.channel_id))
        if switch is not None and not switch.enabled:
            where = "this server" if switch.channel_id == SERVER else "this channel"
            raise NotAllowed(f"{group_title(group)} is switched off in {where} by the server's admins.")
        if rules.age_restricted_only and not is_age_restricted(interaction.channel):
            raise NotAllowed("This server allows making images only in age-restricted channels: use one of those.")
        matched = rules.matcher.first_match(prompt_texts(params))
        if matched is not None:
            raise BadInput(f"Your prompt matches this server's {matched.describe()}. Nothing was charged.")
