"""Validation of synced application commands against Discord's documented limits."""

from __future__ import annotations

import re
from typing import Any

from .errors import ApiError, invalid_form_body

CHAT_INPUT, USER, MESSAGE = 1, 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, NUMBER, CHANNEL = 3, 4, 10, 7
OPTION_TYPES = range(1, 12)
# Discord's regex uses Unicode letter classes; \w is the closest stdlib equivalent.
CHAT_NAME = re.compile(r"^[-_\w]{1,32}$")
MAX_PER_TYPE = {CHAT_INPUT: 100, USER: 15, MESSAGE: 15}
MAX_COMMAND_CHARS = 4000

Path = list[str | int]


def validate_commands(commands: Any) -> None:
    if not isinstance(commands, list):
        raise invalid_form_body([], "BASE_TYPE_ARRAY", "Must be an array.")
    seen: set[tuple[str, int]] = set()
    per_type: dict[int, int] = {}
    for index, command in enumerate(commands):
        if not isinstance(command, dict):
            raise invalid_form_body([index], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        _validate_command(command, [index])
        key = (command["name"], command.get("type", CHAT_INPUT))
        if key in seen:
            raise invalid_form_body(
                [index, "name"],
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique ({key[0]})",
            )
        seen.add(key)
        per_type[key[1]] = per_type.get(key[1], 0) + 1
        if per_type[key[1]] > MAX_PER_TYPE.get(key[1], 0):
            raise ApiError(400, 30032, "Maximum number of application commands reached")


def _validate_command(command: dict[str, Any], path: Path) -> None:
    kind = command.get("type", CHAT_INPUT)
    if kind not in MAX_PER_TYPE:
        raise invalid_form_body([*path, "type"], "BASE_TYPE_CHOICES", f"Value must be one of {set(MAX_PER_TYPE)}.")
    name = command.get("name")
    if kind == CHAT_INPUT:
        _check_chat_name(name, [*path, "name"])
        _check_description(command.get("description"), [*path, "description"])
        _check_options(command.get("options") or [], [*path, "options"], depth=0)
        if _command_chars(command) > MAX_COMMAND_CHARS:
            raise invalid_form_body(
                path, "APPLICATION_COMMAND_TOO_LARGE", f"Command exceeds maximum size ({MAX_COMMAND_CHARS})"
            )
    else:
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            raise invalid_form_body([*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        if command.get("description"):
            raise invalid_form_body(
                [*path, "description"],
                "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                "Context menu commands cannot have description",
            )
        if command.get("options"):
            raise invalid_form_body(
                [*path, "options"],
                "APPLICATION_COMMAND_CONTEXT_MENU_OPTIONS",
                "Context menu commands cannot have options",
            )
    permissions = command.get("default_member_permissions")
    if permissions is not None and not str(permissions).isdigit():
        raise invalid_form_body(
            [*path, "default_member_permissions"], "NUMBER_TYPE_COERCE", f'Value "{permissions}" is not snowflake.'
        )


def _check_chat_name(name: Any, path: Path) -> None:
    if not isinstance(name, str) or not CHAT_NAME.match(name):
        raise invalid_form_body(path, "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid ({name!r})")
    if name != name.lower():
        raise invalid_form_body(path, "APPLICATION_COMMAND_INVALID_NAME", f"Command name must be lowercase ({name!r})")


def _check_description(description: Any, path: Path) -> None:
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        raise invalid_form_body(path, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")


def _check_options(options: list[dict[str, Any]], path: Path, *, depth: int) -> None:
    if len(options) > 25:
        raise invalid_form_body(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names: set[str] = set()
    seen_optional = False
    kinds = {o.get("type") for o in options}
    if kinds & {SUB_COMMAND, SUB_COMMAND_GROUP} and kinds - {SUB_COMMAND, SUB_COMMAND_GROUP}:
        raise invalid_form_body(
            path,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-commands and groups cannot be mixed with other options",
        )
    for index, option in enumerate(options):
        here = [*path, index]
        kind = option.get("type")
        if kind not in OPTION_TYPES:
            raise invalid_form_body([*here, "type"], "BASE_TYPE_CHOICES", "Value must be one of 1..11.")
        _check_chat_name(option.get("name"), [*here, "name"])
        _check_description(option.get("description"), [*here, "description"])
        if option["name"] in names:
            raise invalid_form_body(
                [*here, "name"], "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS", "Option names must be unique"
            )
        names.add(option["name"])
        if kind == SUB_COMMAND_GROUP:
            children = option.get("options") or []
            if depth != 0 or any(c.get("type") != SUB_COMMAND for c in children):
                raise invalid_form_body(
                    [*here, "type"],
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Sub-command groups must be top-level and contain only sub-commands",
                )
            _check_options(children, [*here, "options"], depth=1)
        elif kind == SUB_COMMAND:
            children = option.get("options") or []
            if any(c.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for c in children):
                raise invalid_form_body(
                    [*here, "options"],
                    "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                    "Sub-commands cannot contain sub-commands",
                )
            _check_options(children, [*here, "options"], depth=depth + 1)
        else:
            if option.get("required"):
                if seen_optional:
                    raise invalid_form_body(
                        [*here, "required"],
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
            _check_value_option(option, here)


def _check_value_option(option: dict[str, Any], path: Path) -> None:
    kind = option["type"]
    choices = option.get("choices")
    if choices:
        if kind not in (STRING, INTEGER, NUMBER):
            raise invalid_form_body(
                [*path, "choices"],
                "APPLICATION_COMMAND_OPTION_CHOICES_INVALID",
                "Choices are only allowed for string, integer and number options",
            )
        if option.get("autocomplete"):
            raise invalid_form_body(
                [*path, "autocomplete"],
                "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                "Autocomplete cannot be set on options with choices",
            )
        if len(choices) > 25:
            raise invalid_form_body([*path, "choices"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for index, choice in enumerate(choices):
            _check_choice(choice, kind, [*path, "choices", index])
    if kind != STRING and ("min_length" in option or "max_length" in option):
        raise invalid_form_body(
            [*path, "min_length"],
            "APPLICATION_COMMAND_OPTION_INVALID",
            "min_length/max_length are only allowed for string options",
        )
    if kind not in (INTEGER, NUMBER) and ("min_value" in option or "max_value" in option):
        raise invalid_form_body(
            [*path, "min_value"],
            "APPLICATION_COMMAND_OPTION_INVALID",
            "min_value/max_value are only allowed for integer and number options",
        )
    if kind != CHANNEL and option.get("channel_types"):
        raise invalid_form_body(
            [*path, "channel_types"],
            "APPLICATION_COMMAND_OPTION_INVALID",
            "channel_types is only allowed for channel options",
        )


def _check_choice(choice: dict[str, Any], kind: int, path: Path) -> None:
    name = choice.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise invalid_form_body([*path, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    value = choice.get("value")
    if kind == STRING:
        valid = isinstance(value, str) and len(value) <= 100
    elif kind == INTEGER:
        valid = isinstance(value, int) and not isinstance(value, bool)
    else:
        valid = isinstance(value, int | float) and not isinstance(value, bool)
    if not valid:
        raise invalid_form_body([*path, "value"], "BASE_TYPE_BAD_TYPE", f"Invalid choice value {value!r}")


def _command_chars(node: dict[str, Any]) -> int:
    total = len(node.get("name") or "") + len(node.get("description") or "")
    for choice in node.get("choices") or []:
        total += len(str(choice.get("name", ""))) + len(str(choice.get("value", "")))
    return total + sum(_command_chars(child) for child in node.get("options") or [])
