"""Interaction callbacks and the interaction webhook (followups, @original), with Discord's timing rules."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .bodies import BODY, Body, UploadedFile, json_response, no_content, snowflake
from .errors import (
    ApiError,
    already_acknowledged,
    invalid_form_body,
    invalid_webhook_token,
    unknown_interaction,
    unknown_message,
    unknown_webhook,
)
from .interaction import APPLICATION_COMMAND, AUTOCOMPLETE, COMPONENT, MODAL_SUBMIT, Interaction
from .interaction_payloads import interaction_metadata
from .message_rules import check_message
from .messages import EPHEMERAL, LOADING

if TYPE_CHECKING:
    from .emulator import DiscordEmulator

MESSAGE, DEFER, DEFER_UPDATE, UPDATE, AUTOCOMPLETE_RESULT, MODAL = 4, 5, 6, 7, 8, 9
ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {MESSAGE, DEFER, MODAL},
    COMPONENT: {MESSAGE, DEFER, DEFER_UPDATE, UPDATE, MODAL},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {MESSAGE, DEFER, DEFER_UPDATE, UPDATE},
}
CHAT_INPUT_COMMAND_MESSAGE, CONTEXT_MENU_COMMAND_MESSAGE = 20, 23
TRUTHY = ("1", "true", "True")


class InteractionRoutes:
    def __init__(self, emu: DiscordEmulator) -> None:
        self.emu = emu

    def routes(self) -> list[web.RouteDef]:
        webhook = "/webhooks/{app_id}/{token}"
        return [
            web.post("/interactions/{interaction_id}/{token}/callback", self.callback),
            web.post(webhook, self.followup),
            web.get(webhook + "/messages/{message_id}", self.get_message),
            web.patch(webhook + "/messages/{message_id}", self.edit_message),
            web.delete(webhook + "/messages/{message_id}", self.delete_message),
        ]

    # --- initial response -----------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        ix = self.emu.interactions.get(snowflake(request, "interaction_id"))
        if ix is None or ix.token != request.match_info["token"]:
            raise unknown_interaction()
        body: Body = request[BODY]
        try:
            if ix.acknowledged:
                raise already_acknowledged()
            if ix.dispatched_at is not None and arrived - ix.dispatched_at > self.emu.response_deadline:
                raise unknown_interaction()
            info, resource = self._respond(ix, body.json or {}, body.files)
        except ApiError as error:
            ix.callback_errors.append(error.body())
            ix.changed()
            raise
        ix.acknowledge(body.json or {}, arrived)
        self.emu.notify()
        if request.query.get("with_response") not in TRUTHY:
            return no_content()
        return json_response({"interaction": info, "resource": resource})

    def _respond(
        self, ix: Interaction, payload: dict[str, Any], files: list[UploadedFile]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        kind = payload.get("type")
        data = payload.get("data") or {}
        needs_message = kind in (DEFER_UPDATE, UPDATE)
        if kind not in ALLOWED_CALLBACKS[ix.type] or (needs_message and ix.component_message_id is None):
            raise invalid_form_body(
                ["type"],
                "INTERACTION_RESPONSE_TYPE_INVALID",
                f"Interaction response type {kind} is not valid for interaction type {ix.type}",
            )
        info: dict[str, Any] = {
            "id": str(ix.id),
            "type": ix.type,
            "response_message_loading": False,
            "response_message_ephemeral": False,
        }
        resource: dict[str, Any] = {"type": kind}
        if kind in (MESSAGE, DEFER):
            flags = int(data.get("flags") or 0)
            if kind == MESSAGE:
                check_message(data, files, size_limit=ix.attachment_size_limit, creating=True)
            else:
                data, files = {"flags": (flags & EPHEMERAL) | LOADING}, []
            message = self._interaction_message(ix, data, files, followup_of=None)
            self.emu.store.add(message, visible_to=ix.user.id if flags & EPHEMERAL else None)
            ix.link_original(int(message["id"]))
            info.update(
                response_message_id=message["id"],
                response_message_loading=kind == DEFER,
                response_message_ephemeral=bool(flags & EPHEMERAL),
            )
            resource["message"] = message
        elif needs_message:
            assert ix.component_message_id is not None
            ix.link_original(ix.component_message_id)
            info["response_message_id"] = str(ix.component_message_id)
            if kind == UPDATE:
                check_message(data, files, size_limit=ix.attachment_size_limit, creating=False)
                resource["message"] = self.emu.store.edit(ix.component_message_id, data, files)
        elif kind == AUTOCOMPLETE_RESULT:
            _check_choices(data.get("choices"))
        elif kind == MODAL:
            _check_modal(data)
            self.emu.modals[(ix.user.id, data["custom_id"])] = (data, ix)
        return info, resource

    def _interaction_message(
        self, ix: Interaction, data: dict[str, Any], files: list[UploadedFile], *, followup_of: int | None
    ) -> dict[str, Any]:
        command = ix.payload.get("data") or {}
        command_type = command.get("type") if ix.type == APPLICATION_COMMAND else None
        if followup_of is not None or command_type is None:
            message_type = 0
        else:
            message_type = CHAT_INPUT_COMMAND_MESSAGE if command_type == 1 else CONTEXT_MENU_COMMAND_MESSAGE
        meta = interaction_metadata(
            interaction_id=ix.id,
            kind=ix.type,
            user=ix.user,
            guild_id=ix.guild_id,
            name=command.get("name"),
            command_type=command_type,
            interacted_message_id=ix.component_message_id,
            original_response_message_id=followup_of,
        )
        app_id = str(self.emu.application_id)
        extra: dict[str, Any] = {"webhook_id": app_id, "application_id": app_id, "interaction_metadata": meta}
        if ix.type == APPLICATION_COMMAND:
            extra["interaction"] = {
                "id": str(ix.id),
                "type": ix.type,
                "name": command.get("name", ""),
                "user": ix.user.user,
            }
        return self.emu.store.build(
            channel_id=ix.channel_id,
            guild_id=ix.guild_id,
            author=self.emu.bot_user,
            payload=data,
            files=files,
            message_type=message_type,
            extra=extra,
        )

    # --- webhook: followups and @original -------------------------------------------------------

    def _webhook_interaction(self, request: web.Request) -> Interaction:
        if request.match_info["app_id"] != str(self.emu.application_id):
            raise unknown_webhook()
        ix = self.emu.interaction_by_token(request.match_info["token"])
        if ix is None or ix.token_expired(self.emu.clock.monotonic()):
            raise invalid_webhook_token()
        if not ix.acknowledged:
            raise unknown_webhook()  # Discord knows no webhook until the initial response
        return ix

    def _target(self, ix: Interaction, request: web.Request) -> int:
        raw = request.match_info["message_id"]
        if raw == "@original":
            if ix.original_id is None:
                raise unknown_message()
            return ix.original_id
        message_id = snowflake(request, "message_id")
        if message_id != ix.original_id and message_id not in ix.followup_ids:
            raise unknown_message()
        return message_id

    async def followup(self, request: web.Request) -> web.Response:
        ix = self._webhook_interaction(request)
        body: Body = request[BODY]
        payload = body.json or {}
        check_message(payload, body.files, size_limit=ix.attachment_size_limit, creating=True)
        loading = self.emu.store.by_id.get(ix.original_id or 0)
        if loading is not None and loading["flags"] & LOADING:
            # The first followup after a "thinking" defer replaces the placeholder and keeps its
            # ephemerality, whatever flags the followup itself carries.
            message = self.emu.store.edit(int(loading["id"]), payload, body.files, mark_edited=False)
        else:
            message = self._interaction_message(ix, payload, body.files, followup_of=ix.original_id)
            flags = int(payload.get("flags") or 0)
            self.emu.store.add(message, visible_to=ix.user.id if flags & EPHEMERAL else None)
        ix.link_followup(int(message["id"]))
        if request.query.get("wait") not in TRUTHY:
            return no_content()
        return json_response(message)

    async def get_message(self, request: web.Request) -> web.Response:
        ix = self._webhook_interaction(request)
        return json_response(self.emu.store.get(self._target(ix, request)))

    async def edit_message(self, request: web.Request) -> web.Response:
        ix = self._webhook_interaction(request)
        target = self._target(ix, request)
        body: Body = request[BODY]
        payload = body.json or {}
        check_message(payload, body.files, size_limit=ix.attachment_size_limit, creating=False)
        return json_response(self.emu.store.edit(target, payload, body.files))

    async def delete_message(self, request: web.Request) -> web.Response:
        ix = self._webhook_interaction(request)
        self.emu.store.delete(self._target(ix, request))
        return no_content()


def _check_choices(choices: Any) -> None:
    if not isinstance(choices, list) or len(choices) > 25:
        raise invalid_form_body(["data", "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for index, choice in enumerate(choices):
        name = choice.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise invalid_form_body(
                ["data", "choices", index, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        value = choice.get("value")
        if isinstance(value, str) and len(value) > 100:
            raise invalid_form_body(
                ["data", "choices", index, "value"], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length."
            )


def _check_modal(data: dict[str, Any]) -> None:
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= 45:
        raise invalid_form_body(["data", "title"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
        raise invalid_form_body(["data", "custom_id"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        raise invalid_form_body(["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
