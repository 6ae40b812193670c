"""Acting as Discord users: the messages and interactions their clients send, checked like Discord does."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from . import permissions as perms
from .cdn import AttachmentStore
from .clock import Clock, Snowflakes, snowflake_time
from .command_options import OptionBuilder
from .command_registry import CommandRegistry
from .command_schema import CHAT_INPUT, MESSAGE, USER
from .errors import EmulatorUsageError
from .gateway import DIRECT_MESSAGES, GUILD_MESSAGES, MESSAGE_CONTENT, Gateway
from .guild import Guild
from .interaction import APPLICATION_COMMAND, AUTOCOMPLETE, COMPONENT, MODAL_SUBMIT, Interaction
from .interaction_payloads import BOT_DM_CONTEXT, GUILD_CONTEXT, interaction_create
from .messages import MessageStore
from .models import DM, Attachment, Channel, Member
from .user_inputs import component_data, modal_submit_components

DISPATCH_TIMEOUT = 5.0  # covers a bot that is reconnecting: the dispatch waits for its RESUME


class UserActions:
    """Mixed into DiscordEmulator; these are the parts of it the actions use."""

    application_id: int
    attachment_size_limit: int
    clock: Clock
    ids: Snowflakes
    guild: Guild
    cdn: AttachmentStore
    store: MessageStore
    registry: CommandRegistry
    gateway: Gateway
    interactions: dict[int, Interaction]
    modals: dict[tuple[int, str], tuple[dict[str, Any], Interaction]]
    _by_token: dict[str, Interaction]
    _message_watchers: dict[int, list[Interaction]]

    def user_message(
        self,
        content: str = "",
        *,
        user: Member | None = None,
        channel_id: int | None = None,
        dm: bool = False,
        attachments: tuple[Attachment, ...] | list[Attachment] = (),
    ) -> dict[str, Any]:
        """A message a user posts (MESSAGE_CREATE is dispatched with the content rules of the bot's intents)."""
        user = user or self.guild.owner
        channel = self.guild.dm_channel(user) if dm else self._guild_channel(channel_id)
        stored = [
            self.cdn.store(
                a.data, a.filename, channel_id=channel.id, content_type=a.content_type, description=a.description
            )
            for a in attachments
        ]
        message = self.store.build(
            channel_id=channel.id, guild_id=channel.guild_id, author=user.user, payload={"content": content}, files=[]
        )
        message["attachments"] = stored
        if channel.guild_id:
            message["member"] = user.payload(with_user=False)
        self.store.add(message)
        channel.last_message_id = int(message["id"])
        session = self.gateway.session_for(channel.guild_id)
        if session is not None and session.intents & (DIRECT_MESSAGES if dm else GUILD_MESSAGES):
            sees_content = dm or session.intents & MESSAGE_CONTENT or f"<@{self.application_id}>" in content
            event = (
                message
                if sees_content
                else {**message, "content": "", "attachments": [], "embeds": [], "components": []}
            )
            session.dispatch("MESSAGE_CREATE", event)
        return message

    # --- acting as users ------------------------------------------------------------------------

    def interaction_by_token(self, token: str) -> Interaction | None:
        return self._by_token.get(token)

    async def invoke(
        self,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: Member | None = None,
        attachments: Mapping[str, Attachment] | None = None,
        guild: bool = True,
        channel_id: int | None = None,
        override_permissions: bool = False,
    ) -> Interaction:
        """Run `/command [group] [sub]` with plain option values typed from the synced schema."""
        user = user or self.guild.owner
        name, *path = command.split()
        schema = self._visible_command(name, CHAT_INPUT, user, guild=guild, override=override_permissions)
        channel = self._interaction_channel(user, guild=guild, channel_id=channel_id)
        builder = OptionBuilder(guild=self.guild, cdn=self.cdn, channel=channel, in_guild=guild, invoker=user)
        values = {**(options or {}), **(attachments or {})}
        data = self._command_data(schema, builder.build(schema, path, values), builder.resolved.payload())
        return await self._dispatch(APPLICATION_COMMAND, data, user=user, channel=channel, guild=guild)

    async def autocomplete(
        self,
        command: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        user: Member | None = None,
        guild: bool = True,
        channel_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - public contract
    ) -> list[dict[str, Any]]:
        """Ask for choices while typing `focused`; returns the bot's choices list."""
        user = user or self.guild.owner
        name, *path = command.split()
        schema = self._visible_command(name, CHAT_INPUT, user, guild=guild, override=True)
        channel = self._interaction_channel(user, guild=guild, channel_id=channel_id)
        builder = OptionBuilder(guild=self.guild, cdn=self.cdn, channel=channel, in_guild=guild, invoker=user)
        data = self._command_data(
            schema, builder.build(schema, path, dict(options), focused=focused), builder.resolved.payload()
        )
        ix = await self._dispatch(AUTOCOMPLETE, data, user=user, channel=channel, guild=guild)
        await ix.response(timeout)
        return ix.choices or []

    async def invoke_message_command(
        self,
        name: str,
        message: Mapping[str, Any],
        *,
        user: Member | None = None,
        override_permissions: bool = False,
    ) -> Interaction:
        user = user or self.guild.owner
        target = self._current_message(message)
        channel = self.guild.any_channel(int(target["channel_id"]))
        guild = channel.type != DM
        schema = self._visible_command(name, MESSAGE, user, guild=guild, override=override_permissions)
        resolved = {"messages": {target["id"]: target}}
        data = {**self._command_data(schema, [], resolved), "target_id": target["id"]}
        return await self._dispatch(APPLICATION_COMMAND, data, user=user, channel=channel, guild=guild)

    async def invoke_user_command(
        self, name: str, target: Member, *, user: Member | None = None, override_permissions: bool = False
    ) -> Interaction:
        user = user or self.guild.owner
        schema = self._visible_command(name, USER, user, guild=True, override=override_permissions)
        channel = self._guild_channel(None)
        resolved = {
            "users": {str(target.id): target.user},
            "members": {str(target.id): self.guild.member_payload(target, channel, with_user=False)},
        }
        data = {**self._command_data(schema, [], resolved), "target_id": str(target.id)}
        return await self._dispatch(APPLICATION_COMMAND, data, user=user, channel=channel, guild=True)

    async def press_button(
        self, message: Mapping[str, Any], custom_id: str, *, user: Member | None = None
    ) -> Interaction:
        return await self._component(message, custom_id, None, user=user or self.guild.owner)

    async def select(
        self, message: Mapping[str, Any], custom_id: str, values: list[str], *, user: Member | None = None
    ) -> Interaction:
        return await self._component(message, custom_id, values, user=user or self.guild.owner)

    async def submit_modal(
        self, custom_id: str, values: Mapping[str, Any] | None = None, *, user: Member | None = None
    ) -> Interaction:
        """Submit the modal the bot last showed this user under `custom_id`."""
        user = user or self.guild.owner
        shown = self.modals.get((user.id, custom_id))
        if shown is None:
            offered = [cid for (uid, cid) in self.modals if uid == user.id]
            raise EmulatorUsageError(
                f"emulator: the bot never showed modal {custom_id!r} to {user.name} (shown: {offered})"
            )
        modal, source = shown
        data = {"custom_id": custom_id, "components": modal_submit_components(modal, dict(values or {}))}
        channel = self.guild.any_channel(source.channel_id)
        message_id = source.component_message_id
        message = self.store.by_id.get(message_id) if message_id is not None else None
        return await self._dispatch(
            MODAL_SUBMIT,
            data,
            user=user,
            channel=channel,
            guild=source.guild_id is not None,
            message=message,
            component_message_id=message_id if message else None,
        )

    async def _component(
        self, message: Mapping[str, Any], custom_id: str, values: list[str] | None, *, user: Member
    ) -> Interaction:
        current = self._current_message(message)
        message_id = int(current["id"])
        viewer = self.store.visible_to.get(message_id)
        if viewer is not None and viewer != user.id:
            raise EmulatorUsageError(f"emulator: message {message_id} is ephemeral; only user {viewer} sees it")
        data = component_data(current, custom_id, values)
        channel = self.guild.any_channel(int(current["channel_id"]))
        return await self._dispatch(
            COMPONENT,
            data,
            user=user,
            channel=channel,
            guild=channel.type != DM,
            message=current,
            component_message_id=message_id,
        )

    # --- helpers --------------------------------------------------------------------------------

    def _current_message(self, message: Mapping[str, Any]) -> dict[str, Any]:
        message_id = int(message["id"])
        if message_id in self.store.deleted_ids:
            raise EmulatorUsageError(f"emulator: message {message_id} was deleted")
        return self.store.by_id.get(message_id) or dict(message)

    def _guild_channel(self, channel_id: int | None) -> Channel:
        channel_id = channel_id or self.guild.default_channel_id
        channel = self.guild.channels.get(channel_id)
        if channel is None:
            raise EmulatorUsageError(f"emulator: no guild channel {channel_id} (deleted?)")
        return channel

    def _interaction_channel(self, user: Member, *, guild: bool, channel_id: int | None) -> Channel:
        return self._guild_channel(channel_id) if guild else self.guild.dm_channel(user)

    def _visible_command(self, name: str, kind: int, user: Member, *, guild: bool, override: bool) -> dict[str, Any]:
        """The command as the user's client offers it, refusing what Discord would hide."""
        schema = self.registry.find(name, kind, self.guild.id if guild else None)
        if schema is None:
            synced = [c["name"] for c in self.registry.find_all(kind, self.guild.id)]
            raise EmulatorUsageError(f"emulator: no type-{kind} command {name!r} synced (synced: {synced})")
        contexts = schema.get("contexts")
        context = GUILD_CONTEXT if guild else BOT_DM_CONTEXT
        if contexts is not None and context not in contexts:
            raise EmulatorUsageError(f"emulator: /{name} is not offered in context {context} (contexts {contexts})")
        if not guild and (schema.get("guild_id") or (contexts is None and schema.get("dm_permission") is False)):
            raise EmulatorUsageError(f"emulator: /{name} is not offered in DMs")
        required = schema.get("default_member_permissions")
        if guild and required is not None and not override:
            have = self.guild.base_permissions(user)
            need = int(required)
            if not have & perms.ADMINISTRATOR and (need == 0 or have & need != need):
                raise EmulatorUsageError(
                    f"emulator: Discord hides /{name} from {user.name} (default_member_permissions={need}); "
                    "pass override_permissions=True to emulate a server-side permission override"
                )
        return schema

    @staticmethod
    def _command_data(
        schema: dict[str, Any], options: list[dict[str, Any]], resolved: dict[str, Any]
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"id": schema["id"], "name": schema["name"], "type": schema["type"]}
        if options:
            data["options"] = options
        if resolved:
            data["resolved"] = resolved
        if schema.get("guild_id"):
            data["guild_id"] = schema["guild_id"]
        return data

    async def _dispatch(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user: Member,
        channel: Channel,
        guild: bool,
        message: dict[str, Any] | None = None,
        component_message_id: int | None = None,
    ) -> Interaction:
        guild_id = self.guild.id if guild else None
        session = self.gateway.session_for(guild_id)
        if session is None:
            raise EmulatorUsageError("emulator: the bot has no gateway session (not started, or not identified yet)")
        interaction_id = self.ids.next()
        token = f"aW50ZXJhY3Rpb246{interaction_id}:{secrets.token_urlsafe(48)}"
        ix = Interaction(
            id=interaction_id,
            token=token,
            type=kind,
            user=user,
            channel_id=channel.id,
            guild_id=guild_id,
            attachment_size_limit=self.attachment_size_limit,
            created_at=snowflake_time(interaction_id),
            created_clock=self.clock.monotonic(),
            store=self.store,
            component_message_id=component_message_id,
            watchers=self._message_watchers,
        )
        ix.payload = interaction_create(
            interaction_id=interaction_id,
            token=token,
            kind=kind,
            application_id=self.application_id,
            data=data,
            guild=self.guild,
            user=user,
            channel=channel,
            in_guild=guild,
            attachment_size_limit=self.attachment_size_limit,
            message=message,
        )
        self.interactions[interaction_id] = ix
        self._by_token[token] = ix
        session.dispatch("INTERACTION_CREATE", ix.payload, ix.mark_dispatched)
        await ix.wait_dispatched(within=DISPATCH_TIMEOUT)
        return ix
