"""Slash commands whose options are decided at start-up (e.g. a `studio` option only where more than one
enabled studio can do the thing), built with discord.py's own parameter parsing.

`build()` gives a callback the exact signature wanted (`__signature__`), plus the descriptions, choices and
autocomplete discord.py reads from decorators, so the command is the same as one written by hand.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice

from bot.providers.routing import studio_name

Handler = Callable[..., Awaitable[None]]
Autocomplete = Callable[[discord.Interaction[Any], str], Awaitable[list[Choice[str]]]]
REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Opt:
    name: str
    annotation: Any
    description: str
    default: Any = REQUIRED
    choices: Sequence[Choice[Any]] = ()
    autocomplete: Autocomplete | None = None


def studio_option(studios: list[str], what: str) -> list[Opt]:
    """The `studio` option of a command several studios can do ("Which studio draws it"); none for one."""
    if len(studios) < 2:
        return []
    choices = [Choice(name=studio_name(s), value=s) for s in studios]
    return [Opt("studio", str | None, f"Which studio {what} (default: this server's choice)", None, choices)]


def build(
    name: str,
    description: str,
    handler: Handler,
    options: Sequence[Opt],
    *,
    parent: app_commands.Group | None = None,
) -> app_commands.Command[Any, ..., None]:
    """A command calling `handler(interaction, **options)`; absent optional options arrive as their default."""

    async def callback(interaction: discord.Interaction[Any], **values: Any) -> None:
        await handler(interaction, **values)

    ordered = [o for o in options if o.default is REQUIRED] + [o for o in options if o.default is not REQUIRED]
    parameters = [
        inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)
    ]
    parameters += [
        inspect.Parameter(o.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=o.annotation, default=o.default)
        for o in ordered
    ]
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_description__ = {o.name: o.description for o in options}  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_choices__ = {o.name: list(o.choices) for o in options if o.choices}  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_autocomplete__ = {  # type: ignore[attr-defined]
        o.name: o.autocomplete for o in options if o.autocomplete is not None
    }
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=name, description=description, callback=callback, parent=parent
    )
    if parent is not None:
        parent.add_command(command)
    return command
