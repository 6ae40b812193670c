"""DiscordEmulator: the facade tests use to run the emulator and act as Discord users."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from . import permissions as perms
from .cdn import AttachmentStore
from .clock import DISCORD_EPOCH_MS, Clock, Snowflakes
from .command_registry import CommandRegistry
from .gateway import GUILD_MEMBERS, GUILDS, Gateway
from .guild import Guild
from .interaction import Interaction
from .messages import EPHEMERAL, MessageStore
from .models import Member, RecordedError, RecordedRequest
from .server import GATEWAY_PATH, EmulatorServer
from .signals import Signal
from .user_actions import UserActions

T = TypeVar("T")
MessagePredicate = Callable[[dict[str, Any]], bool]
DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024
WAIT_FOR_POLL = 0.01  # wait_for predicates may read state outside the emulator (fakes, the bot's database)


class DiscordEmulator(UserActions):
    """Discord's REST API, gateway and CDN on 127.0.0.1, for one bot and one guild."""

    def __init__(
        self,
        bot_token: str = "emu-token",
        *,
        bot_name: str = "EmuBot",
        guild_name: str = "Emulated Guild",
        owner_name: str = "owner",
        attachment_size_limit: int = DEFAULT_ATTACHMENT_LIMIT,
    ) -> None:
        self.bot_token = bot_token
        self.attachment_size_limit = attachment_size_limit
        self.response_deadline = 3.0  # seconds (real time) for the initial interaction response
        self.clock = Clock()
        self.ids = Snowflakes(self.clock)
        self.application_id = self.ids.next()  # like modern apps: application id == bot user id
        self.bot_public = True  # "Public Bot" in the Developer Portal: anyone can add it
        self.team_members: list[Member] | None = None  # set: the application belongs to a team of these
        bot_member = Member(self.application_id, bot_name, bot=True)
        self.bot_user: dict[str, Any] = {
            **bot_member.user,
            "bot": True,
            "system": False,
            "verified": True,
            "mfa_enabled": False,
            "email": None,
            "locale": "en-US",
            "premium_type": 0,
        }
        self.guild = Guild(ids=self.ids, clock=self.clock, name=guild_name, bot=bot_member, owner_name=owner_name)
        self.cdn = AttachmentStore(self.ids, self.clock)
        self.store = MessageStore(self.ids, self.clock, self.cdn, self.notify)
        self.registry = CommandRegistry(self.ids, self.application_id)
        self.gateway = Gateway(
            token=bot_token, bot_user=self.bot_user, application_id=self.application_id, guild=self.guild
        )
        self.interactions: dict[int, Interaction] = {}
        self._by_token: dict[str, Interaction] = {}
        self.modals: dict[tuple[int, str], tuple[dict[str, Any], Interaction]] = {}
        self.requests: list[RecordedRequest] = []
        self.api_errors: list[RecordedError] = []
        self.reactions: list[tuple[int, str]] = []
        self._changed = Signal()
        self._message_watchers: dict[int, list[Interaction]] = {}  # message id -> interactions showing it
        self.middlewares: list[Any] = []  # aiohttp middlewares put before the emulator's (set before start)
        self._server = EmulatorServer(self)
        self.base_url = ""  # http://127.0.0.1:PORT once started

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        await self._server.start(host, port)
        self.base_url = f"http://{host}:{self._server.port}"
        self.cdn.base_url = self.base_url
        self.gateway.url = self.gateway_url

    async def stop(self) -> None:
        await self.gateway.close()
        await self._server.stop()

    async def __aenter__(self) -> DiscordEmulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.base_url.removeprefix('http://')}{GATEWAY_PATH}"

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close the bot's websocket(s); discord.py should RESUME (4000) or re-IDENTIFY."""
        await self.gateway.drop_connections(code)

    # --- the guild ------------------------------------------------------------------------------

    @property
    def guild_id(self) -> int:
        return self.guild.id

    @property
    def channel_id(self) -> int:
        return self.guild.default_channel_id

    @property
    def owner(self) -> Member:
        return self.guild.owner

    @property
    def bot_member(self) -> Member:
        return self.guild.bot

    def remove_bot_from_guild(self) -> None:
        """The bot is no longer in the guild (it left, or was kicked): GUILD_DELETE, as Discord sends it."""
        self.guild.bot_present = False
        self._dispatch_guild_event("GUILD_DELETE", {"id": str(self.guild.id)})

    def add_bot_to_guild(self) -> None:
        """Someone adds the bot to the guild with the invite link: GUILD_CREATE (discord.py: on_guild_join)."""
        self.guild.bot_present = True
        self.guild.bot.joined_at = self.clock.iso_now()
        session = self.gateway.session_for(self.guild.id)
        with_members = session is not None and bool(session.intents & GUILD_MEMBERS)
        payload = self.guild.create_payload(with_members=with_members)
        del payload["unavailable"]  # a guild just joined has no "unavailable" key: how clients tell joins apart
        self._dispatch_guild_event("GUILD_CREATE", payload)

    def team_payload(self) -> dict[str, Any] | None:
        """The application's team (GET /oauth2/applications/@me), members as admins, or None."""
        if self.team_members is None:
            return None
        team_id = str(self.application_id + 1)
        owner = self.team_members[0] if self.team_members else self.owner
        return {
            "id": team_id,
            "name": "Emulated Team",
            "icon": None,
            "owner_user_id": str(owner.id),
            "members": [
                {"membership_state": 2, "team_id": team_id, "user": m.user, "role": "admin", "permissions": ["*"]}
                for m in self.team_members
            ],
        }

    def add_member(
        self,
        name: str = "alice",
        *,
        roles: tuple[int, ...] | list[int] = (),
        admin: bool = False,
        locale: str = "en-US",
    ) -> Member:
        role_ids = list(roles)
        if admin:
            if self.guild.admin_role_id is None:
                self.guild.admin_role_id = self.add_role("Admin", perms.ADMIN_ROLE)
            role_ids.append(self.guild.admin_role_id)
        member = self.guild.add_member(name, roles=role_ids, locale=locale)
        self._dispatch_guild_event(
            "GUILD_MEMBER_ADD", {"guild_id": str(self.guild.id), **member.payload()}, intent=GUILD_MEMBERS
        )
        return member

    def set_roles(self, member: Member, roles: tuple[int, ...] | list[int]) -> None:
        member.roles = list(roles)
        self._dispatch_guild_event(
            "GUILD_MEMBER_UPDATE", {"guild_id": str(self.guild.id), **member.payload()}, intent=GUILD_MEMBERS
        )

    def add_role(self, name: str, permissions: int = 0) -> int:
        role = self.guild.add_role(name, permissions)
        self._dispatch_guild_event("GUILD_ROLE_CREATE", {"guild_id": str(self.guild.id), "role": role.payload()})
        return role.id

    def add_channel(self, name: str, *, nsfw: bool = False) -> int:
        channel = self.guild.add_channel(name, nsfw=nsfw)
        self._dispatch_guild_event("CHANNEL_CREATE", self.guild.channel_payload(channel))
        return channel.id

    def forbid_channel(self, channel_id: int, deny: int = perms.SEND_BLOCKED) -> None:
        """Deny the bot SEND_MESSAGES/ATTACH_FILES there, or the permission bits in `deny` (an overwrite, so
        the bot's cache agrees)."""
        channel = self.guild.forbid_channel(channel_id, deny)
        self._dispatch_guild_event("CHANNEL_UPDATE", self.guild.channel_payload(channel))

    def delete_channel(self, channel_id: int) -> None:
        channel = self.guild.delete_channel(channel_id)
        self._dispatch_guild_event("CHANNEL_DELETE", self.guild.channel_payload(channel))

    def close_dms(self, user_id: int) -> None:
        self.guild.closed_dms.add(user_id)

    def advance_time(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def _dispatch_guild_event(self, event: str, data: dict[str, Any], *, intent: int = GUILDS) -> None:
        self.gateway.dispatch(event, data, guild_id=self.guild.id, intent=intent)

    # --- commands as synced ---------------------------------------------------------------------

    @property
    def commands(self) -> list[dict[str, Any]]:
        return self.registry.global_commands

    @property
    def guild_commands(self) -> dict[int, list[dict[str, Any]]]:
        return self.registry.guild_commands

    @property
    def sync_count(self) -> int:
        return self.registry.sync_count

    # --- messages -------------------------------------------------------------------------------

    def messages(self, channel_id: int) -> list[dict[str, Any]]:
        """Current versions of what the bot posted with POST /channels/{id}/messages (deleted ones excluded)."""
        return self.store.in_channel(channel_id)

    def dm_messages(self, user_id: int) -> list[dict[str, Any]]:
        channel = self.guild.dm_channels.get(user_id)
        return [] if channel is None else self.store.in_channel(channel.id)

    def message(self, message_id: int) -> dict[str, Any] | None:
        """Current version of any message (channel post, interaction response, user message)."""
        return self.store.by_id.get(message_id)

    def message_versions(self, message_id: int) -> list[dict[str, Any]]:
        return list(self.store.versions.get(message_id, []))

    @property
    def deleted_message_ids(self) -> list[int]:
        return self.store.deleted_ids

    def file_bytes(self, attachment: Mapping[str, Any]) -> bytes:
        return self.cdn.bytes_of(dict(attachment))

    def history(
        self, channel_id: int, *, limit: int = 50, before: int | None = None, after: int | None = None
    ) -> list[dict[str, Any]]:
        """Newest first, as GET /channels/{id}/messages answers (ephemeral messages are nobody's history).
        With `after`: the `limit` messages right after that id (still newest first), as Discord does."""
        found = sorted(
            (
                m
                for i, m in self.store.by_id.items()
                if m["channel_id"] == str(channel_id)
                and not m["flags"] & EPHEMERAL
                and (before is None or i < before)
                and (after is None or i > after)
            ),
            key=lambda m: int(m["id"]),
        )
        chosen = found[:limit] if after is not None and before is None else found[-limit:]
        return chosen[::-1]

    def message_with_nonce(self, channel_id: int, nonce: str, *, within: float) -> dict[str, Any] | None:
        """The bot's message in this channel created with `nonce` in the last `within` seconds, if any."""
        oldest = (int((self.clock.wall() - within) * 1000) - DISCORD_EPOCH_MS) << 22
        for i, m in self.store.by_id.items():
            if i >= oldest and m["channel_id"] == str(channel_id) and m.get("nonce") == nonce:
                return m
        return None

    async def wait_for_message(
        self,
        channel_id: int,
        predicate: MessagePredicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - public contract
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            return next((m for m in self.messages(channel_id) if predicate is None or predicate(m)), None)

        return await self._changed.wait_until(check, within=timeout, what=f"a bot message in channel {channel_id}")

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:  # noqa: ASYNC109 - contract
        """Poll `predicate()` after every state change until it returns something truthy, which is returned."""

        def check() -> T | None:
            result = predicate()
            return result if result else None

        what = getattr(predicate, "__name__", "predicate")
        return await self._changed.wait_until(check, within=timeout, what=what, poll=WAIT_FOR_POLL)

    def notify(self, message_id: int | None = None) -> None:
        """Wake waiters: the emulator-wide ones, and interactions whose @original/followup `message_id` is."""
        self._changed.notify()
        for ix in self._message_watchers.get(message_id or 0, ()):
            ix.changed()
