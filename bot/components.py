"""Buttons and modals that survive restarts: `custom_id`s name an action and a database id, and one router
resolves them — no in-memory views, no timeouts.

custom_id grammar: "<prefix>:<action>:<id>[:<arg>]", at most 100 characters.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.errors import UserFacingError
from bot.tree import mark_received, respond

if TYPE_CHECKING:
    from bot.app import EaselBot

log = logging.getLogger(__name__)

Handler = Callable[[discord.Interaction[Any], str, str | None], Awaitable[None]]


def parse_custom_id(custom_id: str) -> tuple[str, str, str, str | None] | None:
    parts = custom_id.split(":", 3)
    if len(parts) < 3:
        return None
    prefix, action, target = parts[0], parts[1], parts[2]
    return prefix, action, target, parts[3] if len(parts) == 4 else None


class ComponentRouter:
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        self._handlers: dict[tuple[str, str], Handler] = {}

    def register(self, prefix: str, action: str, handler: Handler) -> None:
        self._handlers[(prefix, action)] = handler

    def unregister(self, prefix: str, action: str) -> None:
        self._handlers.pop((prefix, action), None)

    async def on_interaction(self, interaction: discord.Interaction[EaselBot]) -> None:
        if interaction.type not in (discord.InteractionType.component, discord.InteractionType.modal_submit):
            return
        data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
        parsed = parse_custom_id(str(data.get("custom_id", "")))
        if parsed is None:
            return
        prefix, action, target, arg = parsed
        handler = self._handlers.get((prefix, action))
        if handler is None:
            if prefix in {p for p, _ in self._handlers}:
                await respond(interaction, "This button belongs to a feature that is switched off now.")
            return
        mark_received(interaction)
        self.bot.metrics.commands.labels(f"button:{action}").inc()
        try:
            await handler(interaction, target, arg)
        except UserFacingError as exc:
            self.bot.metrics.errors.labels(f"button:{action}", "user").inc()
            await respond(interaction, exc.message)
        except Exception as exc:  # noqa: BLE001 - every bug gets an id and an apology
            await self.bot.easel_tree.report_unexpected(interaction, exc)
