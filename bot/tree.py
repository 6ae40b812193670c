"""The command tree: one error handler for every command, and the respond-or-followup helper."""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord import app_commands

from bot.access import GUILD_NOT_ALLOWED, guild_allowed
from bot.errors import UserFacingError

if TYPE_CHECKING:
    from bot.app import EaselBot

log = logging.getLogger(__name__)

_RECEIVED = "easel_received"  # key in Interaction.extras: monotonic time we first saw it
_ANSWERED = "easel_answered"


class AwaitingFirstResponse:
    """Interactions received and not yet answered: while there are any, background work holds back."""

    def __init__(self) -> None:
        self._waiting: dict[int, tuple[float, discord.Interaction[Any]]] = {}

    def add(self, interaction: discord.Interaction[Any], at: float) -> None:
        self._waiting[interaction.id] = (at, interaction)

    def __bool__(self) -> bool:
        now = time.monotonic()
        for key, (at, interaction) in list(self._waiting.items()):
            # Answered, or past Discord's deadline (nothing left to protect): forget it.
            if interaction.response.is_done() or now - at > 3.0:
                del self._waiting[key]
        return bool(self._waiting)


def mark_received(interaction: discord.Interaction[Any]) -> None:
    if _RECEIVED in interaction.extras:
        return
    interaction.extras[_RECEIVED] = now = time.monotonic()
    awaiting = getattr(interaction.client, "awaiting_first_response", None)
    if awaiting is not None:
        awaiting.add(interaction, now)


def record_first_response(interaction: discord.Interaction[Any]) -> None:
    if interaction.extras.get(_ANSWERED):
        return
    interaction.extras[_ANSWERED] = True
    received = interaction.extras.get(_RECEIVED)
    bot = interaction.client
    metrics = getattr(bot, "metrics", None)
    if received is not None and metrics is not None:
        metrics.first_response.observe(time.monotonic() - received)


async def defer(interaction: discord.Interaction[Any], *, ephemeral: bool = False, thinking: bool = True) -> None:
    """Acknowledge now (Discord's 3 s deadline); the real answer follows."""
    if interaction.response.is_done():
        return
    await interaction.response.defer(ephemeral=ephemeral, thinking=thinking)
    record_first_response(interaction)


async def respond(
    interaction: discord.Interaction[Any],
    content: str | None = None,
    *,
    ephemeral: bool = True,
    **kwargs: Any,
) -> discord.Message | None:
    """Answer however the interaction stands: first response, followup, or (token dead) not at all.

    Returns the message when Discord gives one back; None when the token has expired (the caller decides
    whether a channel message is needed instead).
    """
    if not interaction.response.is_done():
        await interaction.response.send_message(content, ephemeral=ephemeral, **kwargs)
        record_first_response(interaction)
        return None
    if interaction.is_expired():
        log.info("Not answering interaction %s: its token has expired", interaction.id)
        return None
    return await interaction.followup.send(content or discord.utils.MISSING, ephemeral=ephemeral, wait=True, **kwargs)


def _command_name(interaction: discord.Interaction[Any]) -> str:
    command = interaction.command
    return command.qualified_name if command is not None else "unknown"


def _describe_check_failure(error: app_commands.AppCommandError) -> str | None:
    if isinstance(error, app_commands.MissingPermissions):
        needed = ", ".join(p.replace("_", " ").replace("guild", "server").title() for p in error.missing_permissions)
        return f"You need the {needed} permission to use this."
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works in servers only, not in DMs."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.TransformerError):
        return f"That value for this option is not valid: {error.value!r}."
    if isinstance(error, app_commands.CheckFailure):
        return str(error) or "You can't use this command here."
    return None


class EaselTree(app_commands.CommandTree["EaselBot"]):
    """Maps every error to one ephemeral message; unexpected ones get an id the admin can grep for."""

    async def interaction_check(self, interaction: discord.Interaction[EaselBot]) -> bool:
        mark_received(interaction)
        self.client.metrics.commands.labels(_command_name(interaction)).inc()
        if interaction.guild_id is not None and not guild_allowed(self.client.settings, interaction.guild_id):
            # A server that installed only the commands still sends interactions; there is no bot to leave.
            raise app_commands.CheckFailure(GUILD_NOT_ALLOWED)
        return True

    async def on_error(self, interaction: discord.Interaction[EaselBot], error: app_commands.AppCommandError) -> None:
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        command = _command_name(interaction)
        if isinstance(original, UserFacingError):
            self.client.metrics.errors.labels(command, "user").inc()
            await self._tell(interaction, original.message)
            return
        if isinstance(original, aiohttp.ClientError | OSError | TimeoutError):
            # Discord did not answer (a dropped connection): not a bug of ours, and usually nobody to tell.
            self.client.metrics.errors.labels(command, "discord").inc()
            log.warning("No answer from Discord in %s (interaction %s): %r", command, interaction.id, original)
            await self._tell(interaction, "Discord did not answer me just now; please try again.")
            return
        described = _describe_check_failure(error)
        if described is not None:
            self.client.metrics.errors.labels(command, "check").inc()
            await self._tell(interaction, described)
            return
        await self.report_unexpected(interaction, original)

    async def report_unexpected(self, interaction: discord.Interaction[EaselBot], error: BaseException) -> str:
        """Log a bug with its traceback under a fresh id, and apologise to the member quoting it."""
        error_id = secrets.token_hex(4)
        command = _command_name(interaction)
        self.client.metrics.errors.labels(command, "unexpected").inc()
        log.error(
            "Unexpected error %s in %s (interaction %s)",
            error_id,
            command,
            interaction.id,
            exc_info=(type(error), error, error.__traceback__),
        )
        self.client.unexpected_errors.append((error_id, error))
        await self._tell(
            interaction,
            f"Sorry, something went wrong on our side. The server admins can find it in the bot's log "
            f"under error id `{error_id}`.",
        )
        return error_id

    async def _tell(self, interaction: discord.Interaction[EaselBot], message: str) -> None:
        try:
            await respond(interaction, message, ephemeral=True)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("Could not tell the member about an error (interaction %s): %s", interaction.id, exc)
