"""Buttons and modals that survive restarts: `custom_id`s name an action and a database id, and one router
resolves them — no in-memory views, no timeouts.

custom_id grammar: "<prefix>:<action>:<id>[:<arg>]", at most 100 characters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.errors import UserFacingError
from bot.tree import mark_received, respond

if TYPE_CHECKING:
    from bot.app import EaselBot

log = logging.getLogger(__name__)

Handler = Callable[[discord.Interaction[Any], str, str | None], Awaitable[None]]
CONFIRM = "confirm"  # "ej:confirm:<target>:<action>|<arg>": the press that says yes to a costly button
CONFIRMED_KEY = "easel_confirmed"
SPEND_NOTE_KEY = "easel_spend_note"  # said with the queued message: who pays


@dataclass(frozen=True)
class Spends:
    """A button that starts a paid job: what it costs is said on it, confirmed above the server's threshold,
    and charged to whoever presses it."""

    feature: str
    units: int = 1


def parse_custom_id(custom_id: str) -> tuple[str, str, str, str | None] | None:
    parts = custom_id.split(":", 3)
    if len(parts) < 3:
        return None
    prefix, action, target = parts[0], parts[1], parts[2]
    return prefix, action, target, parts[3] if len(parts) == 4 else None


DOUBLE_CLICK_S = 2.0  # the same button pressed again by the same member within this: the second is ignored


class ComponentRouter:
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._spends: dict[tuple[str, str], Spends] = {}
        self._pressed: dict[tuple[int, int, str], float] = {}

    def register(self, prefix: str, action: str, handler: Handler, *, spends: Spends | None = None) -> None:
        self._handlers[(prefix, action)] = handler
        if spends is not None:
            self._spends[(prefix, action)] = spends

    def unregister(self, prefix: str, action: str) -> None:
        self._handlers.pop((prefix, action), None)
        self._spends.pop((prefix, action), None)

    async def on_interaction(self, interaction: discord.Interaction[EaselBot]) -> None:
        if interaction.type not in (discord.InteractionType.component, discord.InteractionType.modal_submit):
            return
        data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
        parsed = parse_custom_id(str(data.get("custom_id", "")))
        if parsed is None:
            return
        prefix, action, target, arg = parsed
        if action == CONFIRM and arg:
            action, _, rest = arg.partition("|")
            arg = rest or None
            interaction.extras[CONFIRMED_KEY] = True
        handler = self._handlers.get((prefix, action))
        if handler is None:
            if prefix in {p for p, _ in self._handlers}:
                await respond(interaction, "This button belongs to a feature that is switched off now.")
            return
        mark_received(interaction)
        self.bot.metrics.commands.labels(f"button:{action}").inc()
        if self._double_click(interaction, str(data.get("custom_id", ""))):
            await respond(interaction, "You just pressed that: it is already on its way.")
            return
        try:
            spends = self._spends.get((prefix, action))
            if spends is not None and not await self._may_spend(interaction, prefix, action, target, arg, spends):
                return
            await handler(interaction, target, arg)
        except UserFacingError as exc:
            self.bot.metrics.errors.labels(f"button:{action}", "user").inc()
            await respond(interaction, exc.message)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:  # Discord did not answer: not a bug
            log.warning("No answer from Discord on button %s (interaction %s): %r", action, interaction.id, exc)
        except Exception as exc:  # noqa: BLE001 - every bug gets an id and an apology
            await self.bot.easel_tree.report_unexpected(interaction, exc)

    def _double_click(self, interaction: discord.Interaction[EaselBot], custom_id: str) -> bool:
        """A second press of one button by one member within a moment (a double click, or an impatient
        second try) does nothing: checked and recorded with no await in between, so two presses that arrive
        together cannot both pass and start (and charge) two jobs."""
        if interaction.type is not discord.InteractionType.component or interaction.message is None:
            return False
        now = time.monotonic()
        if len(self._pressed) > 10_000:
            self._pressed = {k: t for k, t in self._pressed.items() if now - t < DOUBLE_CLICK_S}
        key = (interaction.user.id, interaction.message.id, custom_id)
        last = self._pressed.get(key)
        self._pressed[key] = now
        return last is not None and now - last < DOUBLE_CLICK_S

    async def _may_spend(
        self,
        interaction: discord.Interaction[Any],
        prefix: str,
        action: str,
        target: str,
        arg: str | None,
        spends: Spends,
    ) -> bool:
        """Above the threshold, ask first; a press on someone else's result is charged to the presser, who is
        told so with the queued message."""
        price = await _price(self.bot, interaction.guild_id, spends)
        if price is None:
            return True
        if price > self.bot.settings.confirm_above_credits and not interaction.extras.get(CONFIRMED_KEY):
            view = _confirm_view(prefix, action, target, arg)
            if view is not None:
                await respond(interaction, f"This costs **{price} credits**, charged to you. Go ahead?", view=view)
                view.stop()  # answered by the router from the custom_id
                return False
        _note_payer(interaction, await _owner_of(self.bot, target), price)
        return True


async def _price(bot: EaselBot, guild_id: int | None, spends: Spends) -> int | None:
    costs = getattr(bot.ledger, "costs", None)
    if costs is None:
        return None
    table: dict[str, int] = await costs(guild_id)
    return table.get(spends.feature, 0) * spends.units


async def button_label(bot: EaselBot, guild_id: int | None, label: str, spends: Spends | None) -> str:
    """A button's label with what it costs here, e.g. "Upscale this · 2 credits"."""
    if spends is None:
        return label
    price = await _price(bot, guild_id, spends)
    if price is None:
        return label
    return f"{label} · {price} credit{'s' if price != 1 else ''}" if price else f"{label} · free"


async def _owner_of(bot: EaselBot, job_id: str) -> int | None:
    job = await bot.jobs.store.get(job_id)
    return job.user_id if job is not None else None


def _confirm_view(prefix: str, action: str, target: str, arg: str | None) -> discord.ui.View | None:
    custom_id = f"{prefix}:{CONFIRM}:{target}:{action}" + (f"|{arg}" if arg else "")
    if len(custom_id) > 100:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Yes, spend it", style=discord.ButtonStyle.primary, custom_id=custom_id))
    return view


def _note_payer(interaction: discord.Interaction[Any], owner: int | None, price: int) -> None:
    if owner is not None and owner != interaction.user.id and price:
        interaction.extras[SPEND_NOTE_KEY] = (
            f"This comes out of **your** credits ({price}), not those of the member whose result it is."
        )
