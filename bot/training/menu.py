"""One "Add to my training set" message command for every studio's training sets.

Discord shows one entry per name, so the studios share it: each registers how to add to its sets, and the
pictures go to the open set the member worked on last (the reply names it). The first studio loaded adds the
command to the tree; the last one unloaded removes it.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import NotFound
from bot.jobs.access import Actor
from bot.storage.database import Database

if TYPE_CHECKING:
    from bot.app import EaselBot

MENU_NAME = "Add to my training set"
# (interaction, message, set id) -> None: the studio checks, adds and answers
Adder = Callable[[discord.Interaction["EaselBot"], discord.Message, int], Awaitable[None]]

_menus: weakref.WeakKeyDictionary[EaselBot, TrainingMenu] = weakref.WeakKeyDictionary()


class TrainingMenu:
    def __init__(self, bot: EaselBot) -> None:
        self.bot = bot
        self.adders: dict[str, Adder] = {}
        self.command = app_commands.ContextMenu(
            name=MENU_NAME,
            callback=self._run,
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
        )

    async def _current(self, db: Database, actor: Actor) -> tuple[str, int] | None:
        """The open set this member may change that was touched last, among the loaded studios."""
        studios = sorted(self.adders)
        marks = ", ".join("?" for _ in studios)
        row = await db.fetchone(
            f"SELECT studio, id FROM training_sets WHERE guild_id = ? AND status = 'open' AND studio IN ({marks}) "
            "AND (user_id = ? OR (user_id IS NULL AND ?)) ORDER BY updated_at DESC, id DESC LIMIT 1",
            (actor.guild_id, *studios, actor.user_id, int(actor.is_admin)),
        )
        return (str(row["studio"]), int(row["id"])) if row else None

    async def _run(self, interaction: discord.Interaction[EaselBot], message: discord.Message) -> None:
        found = await self._current(self.bot.db, Actor.of(interaction))
        if found is None:
            raise NotFound(
                "You have no training set open here. Start one first: "
                + " or ".join(f"`/{studio} {'new' if studio == 'portrait' else 'create'}`" for studio in self.adders)
                + "."
            )
        studio, set_id = found
        await self.adders[studio](interaction, message, set_id)


def register(bot: EaselBot, studio: str, adder: Adder) -> None:
    menu = _menus.get(bot)
    if menu is None:
        menu = _menus[bot] = TrainingMenu(bot)
    first = not menu.adders
    menu.adders[studio] = adder
    if first:
        bot.tree.add_command(menu.command)


def unregister(bot: EaselBot, studio: str) -> None:
    menu = _menus.get(bot)
    if menu is None:
        return
    menu.adders.pop(studio, None)
    if not menu.adders:
        bot.tree.remove_command(menu.command.name, type=menu.command.type)
        _menus.pop(bot, None)
