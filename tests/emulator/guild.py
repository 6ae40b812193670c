"""The emulated guild: roles, channels, members, DM channels, and their payloads."""

from __future__ import annotations

from typing import Any

from . import permissions as perms
from .clock import Clock, Snowflakes
from .errors import unknown_channel
from .models import DM, GUILD_CATEGORY, GUILD_TEXT, Channel, Member, Role


class Guild:
    def __init__(self, *, ids: Snowflakes, clock: Clock, name: str, bot: Member, owner_name: str) -> None:
        self._ids = ids
        self._clock = clock
        self.id = ids.next()
        self.name = name
        self.bot = bot
        self.roles: dict[int, Role] = {self.id: Role(self.id, "@everyone", perms.EVERYONE_DEFAULT)}
        self.channels: dict[int, Channel] = {}
        self.members: dict[int, Member] = {}
        self.dm_channels: dict[int, Channel] = {}  # user id -> DM channel
        self._dm_by_id: dict[int, Channel] = {}
        self.closed_dms: set[int] = set()
        self.admin_role_id: int | None = None  # created by the first add_member(admin=True)
        self.category_id: int | None = None  # text channels are created under it
        self.bot_present = True  # False once the bot left (DELETE /users/@me/guilds/{id}) or before it is added
        self.outage = False  # True: READY lists it unavailable and no GUILD_CREATE follows until the outage ends

        bot_role = self.add_role(bot.name, perms.BOT_ROLE_DEFAULT, managed=True)
        bot.roles.append(bot_role.id)
        bot.joined_at = clock.iso_now()
        self.members[bot.id] = bot
        self.owner = self.add_member(owner_name)
        self.category_id = self.add_channel("Text Channels", type_=GUILD_CATEGORY).id
        self.default_channel_id = self.add_channel("general").id

    # --- mutation -------------------------------------------------------------------------------

    def add_role(self, name: str, permissions: int, *, managed: bool = False) -> Role:
        role = Role(self._ids.next(), name, permissions, position=len(self.roles), managed=managed)
        self.roles[role.id] = role
        return role

    def add_member(self, name: str, *, roles: tuple[int, ...] | list[int] = (), locale: str = "en-US") -> Member:
        for role_id in roles:
            if role_id not in self.roles:
                raise ValueError(f"emulator: unknown role id {role_id}")
        member = Member(self._ids.next(), name, list(roles), joined_at=self._clock.iso_now(), locale=locale)
        self.members[member.id] = member
        return member

    def add_channel(self, name: str, *, nsfw: bool = False, type_: int = GUILD_TEXT) -> Channel:
        parent = None if type_ == GUILD_CATEGORY else self.category_id
        channel = Channel(
            self._ids.next(), name, type_, guild_id=self.id, position=len(self.channels), nsfw=nsfw, parent_id=parent
        )
        self.channels[channel.id] = channel
        return channel

    def forbid_channel(self, channel_id: int, deny: int = perms.SEND_BLOCKED) -> Channel:
        channel = self.text_channel(channel_id)
        channel.overwrites = [o for o in channel.overwrites if int(o["id"]) != self.bot.id]
        channel.overwrites.append({"id": str(self.bot.id), "type": 1, "allow": "0", "deny": str(deny)})
        return channel

    def delete_channel(self, channel_id: int) -> Channel:
        channel = self.channels.pop(channel_id, None)
        if channel is None:
            raise ValueError(f"emulator: unknown channel id {channel_id}")
        return channel

    def dm_channel(self, user: Member) -> Channel:
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = Channel(self._ids.next(), "", DM, recipient=user)
            self.dm_channels[user.id] = channel
            self._dm_by_id[channel.id] = channel
        return channel

    # --- lookup ---------------------------------------------------------------------------------

    def any_channel(self, channel_id: int) -> Channel:
        """A guild or DM channel; raises the API's Unknown Channel."""
        channel = self.channels.get(channel_id)
        if channel is not None:
            return channel
        dm = self._dm_by_id.get(channel_id)
        if dm is None:
            raise unknown_channel()
        return dm

    def text_channel(self, channel_id: int) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise ValueError(f"emulator: unknown guild channel id {channel_id}")
        return channel

    def member(self, user_id: int) -> Member:
        member = self.members.get(user_id)
        if member is None:
            raise ValueError(f"emulator: unknown member id {user_id}")
        return member

    # --- permissions ----------------------------------------------------------------------------

    def base_permissions(self, member: Member) -> int:
        return perms.base_permissions(
            is_owner=member.id == self.owner.id,
            everyone=self.roles[self.id].permissions,
            role_permissions=(self.roles[r].permissions for r in member.roles if r in self.roles),
        )

    def channel_permissions(self, member: Member, channel: Channel) -> int:
        if channel.type == DM:
            return perms.DM_APP_PERMISSIONS
        return perms.apply_overwrites(
            self.base_permissions(member),
            guild_id=self.id,
            user_id=member.id,
            role_ids=member.roles,
            overwrites=channel.overwrites,
        )

    # --- payloads -------------------------------------------------------------------------------

    def member_payload(
        self, member: Member, channel: Channel | None = None, *, with_user: bool = True
    ) -> dict[str, Any]:
        data = member.payload(with_user=with_user)
        if channel is not None:
            data["permissions"] = str(self.channel_permissions(member, channel))
        return data

    def channel_payload(self, channel: Channel, *, viewer: Member | None = None) -> dict[str, Any]:
        data = channel.payload()
        if viewer is not None:
            data["permissions"] = str(self.channel_permissions(viewer, channel))
        return data

    def summary_payload(self) -> dict[str, Any]:
        """GET /guilds/{id}: the guild without members/channels."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(self.default_channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "max_presences": None,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "incidents_data": None,
        }

    def create_payload(self, *, with_members: bool) -> dict[str, Any]:
        """GUILD_CREATE: without the members intent Discord only sends the bot's own member."""
        members = self.members.values() if with_members else [self.bot]
        data = self.summary_payload()
        data.update(
            {
                "unavailable": False,
                "joined_at": self.bot.joined_at,
                "large": False,
                "member_count": len(self.members),
                "members": [m.payload() for m in members],
                "channels": [self.channel_payload(c) for c in self.channels.values()],
                "threads": [],
                "voice_states": [],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            }
        )
        for channel in data["channels"]:
            channel.pop("guild_id", None)  # Discord omits it inside GUILD_CREATE
        return data
