"""Plain data the emulator keeps about users, roles, channels and the requests it saw."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GUILD_TEXT = 0
DM = 1
GUILD_CATEGORY = 4


@dataclass(frozen=True)
class Attachment:
    """A file a test user uploads (command option, user message)."""

    data: bytes
    filename: str
    content_type: str | None = None
    description: str | None = None


@dataclass(eq=False)
class Member:
    """A user of the emulated guild; tests pass these as `user=` when acting."""

    id: int
    name: str
    roles: list[int] = field(default_factory=list)
    joined_at: str = ""
    locale: str = "en-US"
    global_name: str | None = None
    nick: str | None = None
    bot: bool = False

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    @property
    def user(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "avatar_decoration_data": None,
            "banner": None,
            "accent_color": None,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": None,
            "collectibles": None,
        }
        if self.bot:
            payload["bot"] = True
        return payload

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "avatar_decoration_data": None,
        }
        if with_user:
            data["user"] = self.user
        return data


@dataclass(eq=False)
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    color: int = 0

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass(eq=False)
class Channel:
    id: int
    name: str
    type: int = GUILD_TEXT
    guild_id: int | None = None
    position: int = 0
    nsfw: bool = False
    topic: str | None = None
    parent_id: int | None = None
    overwrites: list[dict[str, Any]] = field(default_factory=list)
    recipient: Member | None = None  # DM channels only
    last_message_id: int | None = None

    def payload(self) -> dict[str, Any]:
        last = str(self.last_message_id) if self.last_message_id else None
        if self.type == DM:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": DM,
                "recipients": [self.recipient.user],
                "last_message_id": last,
                "flags": 0,
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "nsfw": self.nsfw,
            "topic": self.topic,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": list(self.overwrites),
            "rate_limit_per_user": 0,
            "last_message_id": last,
            "flags": 0,
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[tuple[str, bytes]]
    at: float  # emulator clock (monotonic + advance_time offset)


@dataclass(frozen=True)
class RecordedError:
    """An error answer the emulator gave the bot; fixtures can fail tests on unexpected ones."""

    method: str
    path: str
    status: int
    body: dict[str, Any]
