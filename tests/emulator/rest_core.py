"""REST routes for identity, gateway discovery, command sync, guild and channel lookups."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .bodies import BODY, json_response, no_content, snowflake
from .errors import ApiError, unknown_application, unknown_guild, unknown_member, unknown_user

if TYPE_CHECKING:
    from .emulator import DiscordEmulator


class CoreRoutes:
    def __init__(self, emu: DiscordEmulator) -> None:
        self.emu = emu

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/users/@me", self.get_me),
            web.get("/users/{user_id:\\d+}", self.get_user),
            web.post("/users/@me/channels", self.create_dm),
            web.delete("/users/@me/guilds/{guild_id}", self.leave_guild),
            web.get("/oauth2/applications/@me", self.get_application),
            web.get("/applications/@me", self.get_application),
            web.get("/gateway", self.get_gateway),
            web.get("/gateway/bot", self.get_gateway_bot),
            web.get("/applications/{app_id}/commands", self.get_commands),
            web.put("/applications/{app_id}/commands", self.put_commands),
            web.get("/applications/{app_id}/guilds/{guild_id}/commands", self.get_commands),
            web.put("/applications/{app_id}/guilds/{guild_id}/commands", self.put_commands),
            web.get("/guilds/{guild_id}", self.get_guild),
            web.get("/guilds/{guild_id}/roles", self.get_roles),
            web.get("/guilds/{guild_id}/channels", self.get_guild_channels),
            web.get("/guilds/{guild_id}/members", self.list_members),
            web.get("/guilds/{guild_id}/members/{user_id}", self.get_member),
            web.get("/channels/{channel_id}", self.get_channel),
        ]

    # --- identity -------------------------------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(self.emu.bot_user)

    async def get_user(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        if user_id == self.emu.application_id:
            return json_response(self.emu.bot_user)
        member = self.emu.guild.members.get(user_id)
        if member is None:
            raise unknown_user()
        return json_response(member.user)

    async def create_dm(self, request: web.Request) -> web.Response:
        body = request[BODY].json or {}
        member = self.emu.guild.members.get(int(body.get("recipient_id") or 0))
        if member is None or member.bot:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        return json_response(self.emu.guild.dm_channel(member).payload())

    async def get_application(self, request: web.Request) -> web.Response:
        emu = self.emu
        return json_response(
            {
                "id": str(emu.application_id),
                "name": emu.bot_user["username"],
                "description": "Discord emulator application",
                "icon": None,
                "bot_public": emu.bot_public,
                "bot_require_code_grant": False,
                "owner": emu.owner.user,
                "team": emu.team_payload(),
                "verify_key": "0" * 64,
                "flags": 0,
                "rpc_origins": [],
                "terms_of_service_url": None,
                "privacy_policy_url": None,
                "interactions_endpoint_url": None,
                "role_connections_verification_url": None,
                "tags": [],
                "install_params": None,
                "custom_install_url": None,
                "integration_types_config": {"0": {}},
                "approximate_guild_count": 1,
                "approximate_user_install_count": 0,
                "redirect_uris": [],
                "bot": emu.bot_user,
            }
        )

    async def leave_guild(self, request: web.Request) -> web.Response:
        self._guild(request)
        if not self.emu.guild.bot_present:
            raise unknown_guild()
        self.emu.remove_bot_from_guild()
        return no_content()

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.emu.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self.emu.gateway_url,
                "shards": self.emu.gateway.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    # --- application commands -------------------------------------------------------------------

    def _scope(self, request: web.Request) -> int | None:
        if int(request.match_info["app_id"]) != self.emu.application_id:
            raise unknown_application()
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None
        if int(guild_id) != self.emu.guild.id:
            raise ApiError(403, 50001, "Missing Access")
        return int(guild_id)

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.emu.registry.listed(self._scope(request)))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        return json_response(self.emu.registry.overwrite(scope, request[BODY].json))

    # --- guild ----------------------------------------------------------------------------------

    def _guild(self, request: web.Request) -> None:
        if request.match_info["guild_id"] != str(self.emu.guild.id):
            raise unknown_guild()

    async def get_guild(self, request: web.Request) -> web.Response:
        self._guild(request)
        data = self.emu.guild.summary_payload()
        if request.query.get("with_counts") in ("true", "1", "True"):
            data["approximate_member_count"] = len(self.emu.guild.members)
            data["approximate_presence_count"] = len(self.emu.guild.members)
        return json_response(data)

    async def get_roles(self, request: web.Request) -> web.Response:
        self._guild(request)
        return json_response([r.payload() for r in self.emu.guild.roles.values()])

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        self._guild(request)
        guild = self.emu.guild
        return json_response([guild.channel_payload(c) for c in guild.channels.values()])

    async def list_members(self, request: web.Request) -> web.Response:
        self._guild(request)
        after = int(request.query.get("after", 0))
        limit = int(request.query.get("limit", 1))
        members = sorted((m for m in self.emu.guild.members.values() if m.id > after), key=lambda m: m.id)
        return json_response([m.payload() for m in members[:limit]])

    async def get_member(self, request: web.Request) -> web.Response:
        self._guild(request)
        member = self.emu.guild.members.get(int(request.match_info["user_id"]))
        if member is None:
            raise unknown_member()
        return json_response(member.payload())

    async def get_channel(self, request: web.Request) -> web.Response:
        channel = self.emu.guild.any_channel(snowflake(request, "channel_id"))
        return json_response(self.emu.guild.channel_payload(channel))
