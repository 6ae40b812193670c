"""Options as members read them: "3:4 portrait", "Detailed", never a raw API value or an internal key.

Cogs register their option names and value labels when they load; results and Details use `describe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PARAM_NAMES: dict[str, str] = {}
PARAM_VALUES: dict[str, dict[str, str]] = {}
# Shown elsewhere (the prompt is the embed's text) or meaningless to members (a studio's model ids).
HIDDEN: set[str] = {"prompt", "models", "operation", "callback_url"}
MAX_SHOWN = 8


def register(key: str, name: str | None = None, values: Mapping[str, str] | None = None) -> None:
    if name is not None:
        PARAM_NAMES[key] = name
    if values:
        PARAM_VALUES.setdefault(key, {}).update({str(k): v for k, v in values.items()})


def value_label(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(value_label(key, v) for v in value)[:100] or "—"
    text = str(value)
    return PARAM_VALUES.get(key, {}).get(text, text)[:100]


def name_of(key: str) -> str:
    return PARAM_NAMES.get(key) or key.replace("_", " ").capitalize()


def describe(params: Mapping[str, Any], limit: int = MAX_SHOWN) -> list[tuple[str, str]]:
    """(name, value) pairs of a job's options worth showing, in the order given."""
    shown = []
    for key, value in params.items():
        if value is None or key.startswith("_") or key in HIDDEN or isinstance(value, dict):
            continue
        shown.append((name_of(key), value_label(key, value)))
    return shown[:limit]
