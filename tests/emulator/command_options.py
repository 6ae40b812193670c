"""Turns a test's plain option values into the typed options + resolved data Discord's client sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cdn import AttachmentStore
from .command_schema import SUB_COMMAND, SUB_COMMAND_GROUP
from .errors import EmulatorUsageError
from .guild import Guild
from .models import Attachment, Channel, Member

STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11


@dataclass
class Resolved:
    users: dict[str, Any] = field(default_factory=dict)
    members: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if value}


class OptionBuilder:
    def __init__(
        self, *, guild: Guild, cdn: AttachmentStore, channel: Channel, in_guild: bool, invoker: Member
    ) -> None:
        self._guild = guild
        self._cdn = cdn
        self._channel = channel
        self._in_guild = in_guild
        self._invoker = invoker
        self.resolved = Resolved()

    def build(
        self, command: dict[str, Any], path: list[str], values: dict[str, Any], *, focused: str | None = None
    ) -> list[dict[str, Any]]:
        """Options for `command` + sub-command `path`; `focused` marks an autocomplete request."""
        node = command
        chain: list[dict[str, Any]] = []
        for part in path:
            child = next(
                (
                    o
                    for o in node.get("options") or []
                    if o["name"] == part and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)
                ),
                None,
            )
            if child is None:
                raise EmulatorUsageError(f"emulator: /{command['name']} has no sub-command {part!r}")
            chain.append(child)
            node = child
        schema = node.get("options") or []
        if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema):
            names = sorted(o["name"] for o in schema)
            raise EmulatorUsageError(f"emulator: /{' '.join([command['name'], *path])} needs a sub-command: {names}")
        leaf = self._leaf_options(schema, values, focused=focused)
        for parent in reversed(chain):
            leaf = [{"name": parent["name"], "type": parent["type"], "options": leaf}]
        return leaf

    def _leaf_options(
        self, schema: list[dict[str, Any]], values: dict[str, Any], *, focused: str | None
    ) -> list[dict[str, Any]]:
        by_name = {o["name"]: o for o in schema}
        for name in values:
            if name not in by_name:
                raise EmulatorUsageError(f"emulator: unknown option {name!r}; the command has {sorted(by_name)}")
        if focused is None:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
            if missing:
                raise EmulatorUsageError(f"emulator: required options missing: {missing}")
        elif focused not in values:
            raise EmulatorUsageError(f"emulator: focused option {focused!r} needs a (partial) value")
        elif not by_name[focused].get("autocomplete"):
            raise EmulatorUsageError(f"emulator: option {focused!r} has no autocomplete")
        options = []
        for name, value in values.items():
            spec = by_name[name]
            if name == focused:
                options.append({"name": name, "type": spec["type"], "value": str(value), "focused": True})
            else:
                options.append(
                    {"name": name, "type": spec["type"], "value": self._typed(spec, value, strict=focused is None)}
                )
        return options

    def _typed(self, spec: dict[str, Any], value: Any, *, strict: bool) -> Any:
        kind = spec["type"]
        name = spec["name"]
        if kind == STRING:
            _expect(isinstance(value, str), name, "a str", value)
            if strict:
                _check_length(spec, value)
        elif kind == INTEGER:
            _expect(isinstance(value, int) and not isinstance(value, bool), name, "an int", value)
        elif kind == NUMBER:
            _expect(isinstance(value, int | float) and not isinstance(value, bool), name, "a number", value)
        elif kind == BOOLEAN:
            _expect(isinstance(value, bool), name, "a bool", value)
        elif kind in (USER, MENTIONABLE) and isinstance(value, Member):
            return self._resolve_user(value)
        elif kind == USER:
            _expect(isinstance(value, int), name, "a Member or user id", value)
            return self._resolve_user(self._guild.member(value))
        elif kind == MENTIONABLE:
            _expect(isinstance(value, int), name, "a Member, user id or role id", value)
            if value in self._guild.roles:
                return self._resolve_role(value)
            return self._resolve_user(self._guild.member(value))
        elif kind == ROLE:
            _expect(isinstance(value, int) and value in self._guild.roles, name, "a role id", value)
            return self._resolve_role(value)
        elif kind == CHANNEL:
            _expect(isinstance(value, int) and value in self._guild.channels, name, "a guild channel id", value)
            return self._resolve_channel(spec, self._guild.channels[value])
        elif kind == ATTACHMENT:
            _expect(isinstance(value, Attachment), name, "an emulator Attachment", value)
            return self._resolve_attachment(value)
        else:
            raise EmulatorUsageError(f"emulator: option {name!r} has unsupported type {kind}")
        if strict:
            _check_choices_and_range(spec, value)
        return value

    def _resolve_user(self, member: Member) -> str:
        key = str(member.id)
        self.resolved.users[key] = member.user
        if self._in_guild:
            self.resolved.members[key] = self._guild.member_payload(member, self._channel, with_user=False)
        return key

    def _resolve_role(self, role_id: int) -> str:
        self.resolved.roles[str(role_id)] = self._guild.roles[role_id].payload()
        return str(role_id)

    def _resolve_channel(self, spec: dict[str, Any], channel: Channel) -> str:
        allowed = spec.get("channel_types")
        if allowed and channel.type not in allowed:
            raise EmulatorUsageError(f"emulator: option {spec['name']!r} accepts channel types {allowed}")
        data = self._guild.channel_payload(channel, viewer=self._invoker)
        self.resolved.channels[str(channel.id)] = {
            key: data[key] for key in ("id", "name", "type", "permissions", "parent_id", "nsfw", "guild_id")
        }
        return str(channel.id)

    def _resolve_attachment(self, attachment: Attachment) -> str:
        stored = self._cdn.store(
            attachment.data,
            attachment.filename,
            channel_id=self._channel.id,
            content_type=attachment.content_type,
            description=attachment.description,
            ephemeral=True,
        )
        self.resolved.attachments[stored["id"]] = stored
        return str(stored["id"])


def _expect(ok: bool, name: str, wanted: str, value: Any) -> None:
    if not ok:
        raise EmulatorUsageError(f"emulator: option {name!r} wants {wanted}, got {value!r}")


def _check_length(spec: dict[str, Any], value: str) -> None:
    low, high = spec.get("min_length", 0), spec.get("max_length", 6000)
    if not low <= len(value) <= high:
        raise EmulatorUsageError(f"emulator: option {spec['name']!r} length must be in [{low}, {high}]")


def _check_choices_and_range(spec: dict[str, Any], value: Any) -> None:
    choices = spec.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise EmulatorUsageError(f"emulator: {value!r} is not a choice of {spec['name']!r}: {choices}")
    low, high = spec.get("min_value"), spec.get("max_value")
    if (low is not None and value < low) or (high is not None and value > high):
        raise EmulatorUsageError(f"emulator: option {spec['name']!r} must be in [{low}, {high}]")
