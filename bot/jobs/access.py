"""Who may see or act on a job, a model or a training set: decided here, and only here.

Everything a member owns lives in one scope (a server, or DMs). Nobody acts across scopes: a server's
admin is an admin of that server only. Within a scope:
- the owner may see and act on their things;
- moderators (Manage Messages) may see members' jobs and delete result messages;
- admins (Manage Server) may also act: cancel a member's job, delete a member's model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import discord


class Owned(Protocol):
    @property
    def guild_id(self) -> int | None: ...

    @property
    def user_id(self) -> int | None: ...


@dataclass(frozen=True)
class Actor:
    user_id: int
    guild_id: int | None
    is_admin: bool = False
    is_moderator: bool = False

    @classmethod
    def of(cls, interaction: discord.Interaction[Any]) -> Actor:
        in_guild = interaction.guild_id is not None
        permissions = interaction.permissions
        admin = in_guild and (permissions.administrator or permissions.manage_guild)
        return cls(
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            is_admin=admin,
            is_moderator=in_guild and (admin or permissions.manage_messages),
        )


def same_scope(thing: Owned, who: Actor) -> bool:
    return thing.guild_id == who.guild_id


def owns(thing: Owned, who: Actor) -> bool:
    return same_scope(thing, who) and thing.user_id is not None and thing.user_id == who.user_id


def can_view(thing: Owned, who: Actor) -> bool:
    """See its details and files again (/jobs, Details, a model's info)."""
    return owns(thing, who) or (same_scope(thing, who) and who.is_moderator)


def can_see_result(thing: Owned, who: Actor) -> bool:
    """See a result's details from its message: results are posted publicly in their channel, so anyone in
    that server may; never from another server or someone else's DMs."""
    return same_scope(thing, who) if thing.guild_id is not None else owns(thing, who)


def can_act(thing: Owned, who: Actor) -> bool:
    """Change it: cancel a job, delete or rename a model, train or edit a training set."""
    return owns(thing, who) or (same_scope(thing, who) and who.is_admin)


def can_delete_result(thing: Owned | None, who: Actor) -> bool:
    """Delete a result message: its requester, or a moderator of that server. With no job left to say whose
    it was, only moderators."""
    if thing is None:
        return who.is_moderator
    return owns(thing, who) or (same_scope(thing, who) and who.is_moderator)
