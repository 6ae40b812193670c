"""Errors whose message is meant for the member who ran the command.

Raise one anywhere under a command, check or component handler: the command tree's single `on_error`
turns it into a short ephemeral reply. Anything else is a bug: logged with an error id.
"""

from __future__ import annotations

from discord import app_commands


class UserFacingError(app_commands.AppCommandError):
    """The message is shown to the member as-is (ephemeral)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(UserFacingError):
    """An option, attachment or prompt was not acceptable; nothing was charged or started."""


class NotFound(UserFacingError):
    """An id that does not exist, or that the member may not see (we do not say which)."""


class NotAllowed(UserFacingError):
    """The member may not do this (not theirs, not an admin, blocked)."""


class FeatureUnavailable(UserFacingError):
    """The feature is switched off or its provider is unreachable right now."""
