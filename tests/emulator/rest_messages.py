"""REST routes for channel messages (guild channels and DMs), reactions and typing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import permissions as perms
from .bodies import BODY, Body, json_response, no_content, snowflake
from .errors import cannot_dm, cannot_edit_others, missing_permissions, unknown_message
from .gateway import DIRECT_MESSAGES, GUILD_MESSAGES
from .message_rules import check_message
from .models import DM, Channel

if TYPE_CHECKING:
    from .emulator import DiscordEmulator


NONCE_WINDOW_S = 5 * 60


class MessageRoutes:
    def __init__(self, emu: DiscordEmulator) -> None:
        self.emu = emu

    def routes(self) -> list[web.RouteDef]:
        base = "/channels/{channel_id}/messages"
        return [
            web.get(base, self.history),
            web.post(base, self.create),
            web.get(base + "/{message_id}", self.get),
            web.patch(base + "/{message_id}", self.edit),
            web.delete(base + "/{message_id}", self.delete),
            web.put(base + "/{message_id}/reactions/{emoji}/@me", self.react),
            web.post("/channels/{channel_id}/typing", self.typing),
        ]

    def _channel(self, request: web.Request) -> Channel:
        return self.emu.guild.any_channel(snowflake(request, "channel_id"))

    def _message_in(self, request: web.Request, channel: Channel) -> dict[str, Any]:
        message = self.emu.store.get(snowflake(request, "message_id"))
        if message["channel_id"] != str(channel.id):
            raise unknown_message()
        return message

    def _check_can_send(self, channel: Channel, body: Body) -> None:
        guild = self.emu.guild
        if channel.type == DM:
            assert channel.recipient is not None
            if channel.recipient.id in guild.closed_dms:
                raise cannot_dm()
            return
        allowed = guild.channel_permissions(guild.bot, channel)
        needed = perms.VIEW_CHANNEL | perms.SEND_MESSAGES | (perms.ATTACH_FILES if body.files else 0)
        if allowed & needed != needed:
            raise missing_permissions()

    def _dispatch(self, event: str, data: dict[str, Any], channel: Channel) -> None:
        intent = DIRECT_MESSAGES if channel.type == DM else GUILD_MESSAGES
        self.emu.gateway.dispatch(event, data, guild_id=channel.guild_id, intent=intent)

    async def history(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if channel.type != DM:
            guild = self.emu.guild
            needed = perms.VIEW_CHANNEL | perms.READ_MESSAGE_HISTORY
            if guild.channel_permissions(guild.bot, channel) & needed != needed:
                raise missing_permissions()
        limit = min(int(request.query.get("limit", 50)), 100)
        before = int(request.query.get("before", 0)) or None
        after = int(request.query.get("after", 0)) or None
        return json_response(self.emu.history(channel.id, limit=limit, before=before, after=after))

    async def create(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body: Body = request[BODY]
        self._check_can_send(channel, body)
        payload = body.json or {}
        check_message(payload, body.files, size_limit=self.emu.attachment_size_limit, creating=True)
        if payload.get("enforce_nonce") and payload.get("nonce") is not None:
            # Discord returns the message this author already created with this nonce in the last few minutes.
            earlier = self.emu.message_with_nonce(channel.id, str(payload["nonce"]), within=NONCE_WINDOW_S)
            if earlier is not None:
                return json_response(earlier)
        message = self.emu.store.build(
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=self.emu.bot_user,
            payload=payload,
            files=body.files,
            extra={"nonce": payload["nonce"]} if payload.get("nonce") is not None else None,
        )
        if message.get("guild_id"):
            message["member"] = self.emu.guild.bot.payload(with_user=False)
        self.emu.store.add(message, channel_post=True)
        channel.last_message_id = int(message["id"])
        self._dispatch("MESSAGE_CREATE", message, channel)
        return json_response(message)

    async def get(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        return json_response(self._message_in(request, channel))

    async def edit(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message_in(request, channel)
        if message["author"]["id"] != self.emu.bot_user["id"]:
            raise cannot_edit_others()
        body: Body = request[BODY]
        payload = body.json or {}
        check_message(payload, body.files, size_limit=self.emu.attachment_size_limit, creating=False)
        updated = self.emu.store.edit(int(message["id"]), payload, body.files)
        self._dispatch("MESSAGE_UPDATE", updated, channel)
        return json_response(updated)

    async def delete(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message_in(request, channel)
        self.emu.store.delete(int(message["id"]))
        data = {"id": message["id"], "channel_id": message["channel_id"]}
        if channel.guild_id:
            data["guild_id"] = str(channel.guild_id)
        self._dispatch("MESSAGE_DELETE", data, channel)
        return no_content()

    async def react(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message_in(request, channel)
        self.emu.reactions.append((int(message["id"]), request.match_info["emoji"]))
        return no_content()

    async def typing(self, request: web.Request) -> web.Response:
        self._channel(request)
        return no_content()
