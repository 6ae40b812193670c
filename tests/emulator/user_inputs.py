"""What a user's client sends for components and modals, checked against what the bot actually showed."""

from __future__ import annotations

from typing import Any

from .errors import EmulatorUsageError
from .message_rules import walk_components

ACTION_ROW, BUTTON, STRING_SELECT, TEXT_INPUT, LABEL = 1, 2, 3, 4, 18
SELECT_TYPES = (STRING_SELECT, 5, 6, 7, 8)


def component_data(message: dict[str, Any], custom_id: str, values: list[str] | None) -> dict[str, Any]:
    """`data` of a component interaction on `message`; refuses what a user could not click."""
    component = next(
        (c for c in walk_components(message.get("components") or []) if c.get("custom_id") == custom_id), None
    )
    if component is None:
        ids = [c["custom_id"] for c in walk_components(message.get("components") or []) if "custom_id" in c]
        raise EmulatorUsageError(f"emulator: message {message['id']} has no component {custom_id!r} (has {ids})")
    if component.get("disabled"):
        raise EmulatorUsageError(f"emulator: component {custom_id!r} is disabled")
    kind = int(component["type"])
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": kind}
    if kind in SELECT_TYPES:
        data["values"] = _select_values(component, values or [])
    elif values is not None:
        raise EmulatorUsageError(f"emulator: component {custom_id!r} is not a select menu")
    return data


def _select_values(component: dict[str, Any], values: list[str]) -> list[str]:
    low, high = component.get("min_values", 1), component.get("max_values", 1)
    if not low <= len(values) <= high:
        raise EmulatorUsageError(f"emulator: select {component['custom_id']!r} takes {low}..{high} values")
    if component["type"] == STRING_SELECT:
        offered = {o["value"] for o in component.get("options") or []}
        unknown = [v for v in values if v not in offered]
        if unknown:
            raise EmulatorUsageError(f"emulator: {unknown} are not options of {component['custom_id']!r}")
    return [str(v) for v in values]


def modal_submit_components(modal: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    """Mirror the modal's layout (action rows or labels) with the user's input in each field."""
    known: set[str] = set()

    def answer(field: dict[str, Any]) -> dict[str, Any]:
        custom_id = field["custom_id"]
        known.add(custom_id)
        kind = int(field["type"])
        if kind == TEXT_INPUT:
            value = str(values.get(custom_id, field.get("value") or ""))
            if field.get("required", True) and not value:
                raise EmulatorUsageError(f"emulator: modal field {custom_id!r} is required")
            low, high = field.get("min_length", 0), field.get("max_length", 4000)
            if value and not low <= len(value) <= high:
                raise EmulatorUsageError(f"emulator: modal field {custom_id!r} length must be in [{low}, {high}]")
            return {"type": kind, "id": field.get("id", 0), "custom_id": custom_id, "value": value}
        chosen = values.get(custom_id, [])
        return {
            "type": kind,
            "id": field.get("id", 0),
            "custom_id": custom_id,
            "values": _select_values(field, list(chosen)),
        }

    result: list[dict[str, Any]] = []
    for component in modal.get("components") or []:
        kind = component.get("type")
        if kind == ACTION_ROW:
            fields = [answer(c) for c in component.get("components") or [] if "custom_id" in c]
            result.append({"type": ACTION_ROW, "components": fields})
        elif kind == LABEL and "custom_id" in (component.get("component") or {}):
            result.append({"type": LABEL, "component": answer(component["component"])})
    unknown = set(values) - known
    if unknown:
        raise EmulatorUsageError(f"emulator: modal {modal.get('custom_id')!r} has no fields {sorted(unknown)}")
    return result
