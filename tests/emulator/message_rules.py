"""Discord's limits on message payloads; each violation answers the way Discord does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .bodies import UploadedFile
from .errors import empty_message, entity_too_large, invalid_form_body

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_FILES = 10
MAX_EMBED_TOTAL = 6000
IS_COMPONENTS_V2 = 1 << 15
EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
ACTION_ROW, BUTTON, LINK_STYLE, PREMIUM_STYLE = 1, 2, 5, 6


def check_files(files: list[UploadedFile], size_limit: int) -> None:
    if len(files) > MAX_FILES or any(len(f.data) > size_limit for f in files):
        raise entity_too_large()


def check_message(payload: dict[str, Any], files: list[UploadedFile], *, size_limit: int, creating: bool) -> None:
    check_files(files, size_limit)
    content = payload.get("content")
    if content is not None and len(str(content)) > MAX_CONTENT:
        raise invalid_form_body(["content"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length.")
    embeds = payload.get("embeds") or []
    _check_embeds(embeds)
    components = payload.get("components") or []
    flags = int(payload.get("flags") or 0)
    if flags & IS_COMPONENTS_V2:
        if content or embeds:
            raise invalid_form_body(
                ["content" if content else "embeds"],
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2",
            )
    else:
        _check_legacy_components(components)
    _check_unique_custom_ids(components)
    has_any = (
        (content is not None and str(content).strip())
        or embeds
        or files
        or components
        or payload.get("sticker_ids")
        or payload.get("poll")
    )
    if creating and not has_any:
        raise empty_message()


def _check_embeds(embeds: list[dict[str, Any]]) -> None:
    if len(embeds) > MAX_EMBEDS:
        raise invalid_form_body(["embeds"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        for key, limit in EMBED_TEXT_LIMITS.items():
            text = embed.get(key) or ""
            total += len(text)
            if len(text) > limit:
                raise invalid_form_body(
                    ["embeds", index, key], "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                )
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise invalid_form_body(
                ["embeds", index, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for field_index, field in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                text = str(field.get(key) or "")
                total += len(text)
                if not text or len(text) > limit:
                    raise invalid_form_body(
                        ["embeds", index, "fields", field_index, key],
                        "BASE_TYPE_BAD_LENGTH",
                        f"Must be between 1 and {limit} in length.",
                    )
        total += len((embed.get("footer") or {}).get("text") or "")
        total += len((embed.get("author") or {}).get("name") or "")
    if total > MAX_EMBED_TOTAL:
        raise invalid_form_body(
            ["embeds"], "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"
        )


def _check_legacy_components(components: list[dict[str, Any]]) -> None:
    if len(components) > 5:
        raise invalid_form_body(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    for row_index, row in enumerate(components):
        if row.get("type") != ACTION_ROW:
            raise invalid_form_body(
                ["components", row_index, "type"],
                "UNION_TYPE_CHOICES",
                "Top-level components must be action rows without IS_COMPONENTS_V2.",
            )
        children = row.get("components") or []
        if not 1 <= len(children) <= 5:
            raise invalid_form_body(
                ["components", row_index, "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
            )
        for index, child in enumerate(children):
            _check_button(child, ["components", row_index, "components", index])


def _check_button(component: dict[str, Any], path: list[str | int]) -> None:
    if component.get("type") != BUTTON:
        return
    if len(component.get("label") or "") > 80:
        raise invalid_form_body([*path, "label"], "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length.")
    style = component.get("style")
    if style == LINK_STYLE:
        if not component.get("url"):
            raise invalid_form_body([*path, "url"], "BASE_TYPE_REQUIRED", "This field is required")
    elif style != PREMIUM_STYLE and not component.get("custom_id"):
        raise invalid_form_body([*path, "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")


def walk_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component, including ones nested in rows, sections, containers and labels."""
    for component in components:
        yield component
        yield from walk_components(component.get("components") or [])
        for key in ("accessory", "component"):
            nested = component.get(key)
            if isinstance(nested, dict):
                yield from walk_components([nested])


def _check_unique_custom_ids(components: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for component in walk_components(components):
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if len(custom_id) > 100:
            raise invalid_form_body(
                ["components"], "BASE_TYPE_MAX_LENGTH", "custom_id: Must be 100 or fewer in length."
            )
        if custom_id in seen:
            raise invalid_form_body(
                ["components"],
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                f"Component custom id cannot be duplicated ({custom_id})",
            )
        seen.add(custom_id)
