"""Application commands as the bot last synced them, with ids that survive re-syncs like Discord's."""

from __future__ import annotations

import json
from typing import Any

from .clock import Snowflakes
from .command_schema import CHAT_INPUT, validate_commands


class CommandRegistry:
    def __init__(self, ids: Snowflakes, application_id: int) -> None:
        self._ids = ids
        self._application_id = application_id
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.sync_count = 0
        # (guild id or None, name, type) -> (id, version, fingerprint)
        self._identity: dict[tuple[int | None, str, int], tuple[int, int, str]] = {}

    def overwrite(self, guild_id: int | None, commands: Any) -> list[dict[str, Any]]:
        """PUT .../commands: validate everything first, then replace the whole scope."""
        self.sync_count += 1
        validate_commands(commands)
        stored = [self._register(guild_id, command) for command in commands]
        if guild_id is None:
            self.global_commands = stored
        else:
            self.guild_commands[guild_id] = stored
        return stored

    def listed(self, guild_id: int | None) -> list[dict[str, Any]]:
        return self.global_commands if guild_id is None else self.guild_commands.get(guild_id, [])

    def find(self, name: str, kind: int, guild_id: int | None) -> dict[str, Any] | None:
        """What a user sees: the guild's own commands shadow global ones of the same name."""
        scopes = [self.guild_commands.get(guild_id, [])] if guild_id is not None else []
        for scope in [*scopes, self.global_commands]:
            for command in scope:
                if command["name"] == name and command["type"] == kind:
                    return command
        return None

    def find_all(self, kind: int, guild_id: int | None) -> list[dict[str, Any]]:
        scopes = [*self.guild_commands.get(guild_id, []), *self.global_commands] if guild_id else self.global_commands
        return [c for c in scopes if c["type"] == kind]

    def _register(self, guild_id: int | None, command: dict[str, Any]) -> dict[str, Any]:
        kind = command.get("type", CHAT_INPUT)
        key = (guild_id, command["name"], kind)
        fingerprint = json.dumps(command, sort_keys=True)
        known = self._identity.get(key)
        if known is None:
            command_id = self._ids.next()
            version = command_id
        else:
            command_id, version, previous = known
            if previous != fingerprint:
                version = self._ids.next()
        self._identity[key] = (command_id, version, fingerprint)
        stored: dict[str, Any] = {
            "name_localizations": None,
            "description_localizations": None,
            "default_member_permissions": None,
            "contexts": None,
            "integration_types": [0],
            "nsfw": False,
            **command,
            "id": str(command_id),
            "application_id": str(self._application_id),
            "version": str(version),
            "type": kind,
            "description": command.get("description") or "",
        }
        if kind == CHAT_INPUT:
            stored.setdefault("options", [])
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        return stored
