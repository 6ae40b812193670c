"""Message objects: built from what the bot sends, edited, deleted, with every version kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .bodies import UploadedFile
from .cdn import AttachmentStore
from .clock import Clock, Snowflakes
from .errors import invalid_form_body, unknown_message

EPHEMERAL = 1 << 6
LOADING = 1 << 7
# Flags a bot may set or change itself; the rest are Discord-managed.
EDITABLE_FLAGS = (1 << 2) | (1 << 12) | (1 << 15)
DEFAULT, REPLY = 0, 19


class MessageStore:
    def __init__(self, ids: Snowflakes, clock: Clock, cdn: AttachmentStore, changed: Callable[[int], None]) -> None:
        self._ids = ids
        self._clock = clock
        self._cdn = cdn
        self._changed = changed
        self.by_id: dict[int, dict[str, Any]] = {}
        self.versions: dict[int, list[dict[str, Any]]] = {}
        self.channel_posts: dict[int, list[int]] = {}  # posted through POST /channels/{id}/messages
        self.deleted_ids: list[int] = []
        self.visible_to: dict[int, int] = {}  # ephemeral message id -> the only user who sees it

    # --- building -------------------------------------------------------------------------------

    def build(
        self,
        *,
        channel_id: int,
        guild_id: int | None,
        author: dict[str, Any],
        payload: dict[str, Any],
        files: list[UploadedFile],
        message_type: int = DEFAULT,
        extra: dict[str, Any] | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        message_id = message_id or self._ids.next()
        attachments = self._new_attachments(payload, files, channel_id)
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "type": message_type,
            "content": payload.get("content") or "",
            "embeds": _normalize_embeds(payload.get("embeds") or [], attachments),
            "components": list(payload.get("components") or []),
            "attachments": attachments,
            "author": author,
            "flags": int(payload.get("flags") or 0),
            "timestamp": self._clock.iso_now(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "mention_channels": [],
            "pinned": False,
            "reactions": [],
            "sticker_items": [],
        }
        if guild_id is not None:
            message["guild_id"] = str(guild_id)
        if payload.get("poll"):
            message["poll"] = payload["poll"]
        reference = payload.get("message_reference")
        if reference:
            self._attach_reference(message, reference)
        if extra:
            message.update(extra)
        return message

    def _attach_reference(self, message: dict[str, Any], reference: dict[str, Any]) -> None:
        referenced = self.by_id.get(int(reference["message_id"]))
        if referenced is None and reference.get("fail_if_not_exists", True):
            raise invalid_form_body(["message_reference"], "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
        message["type"] = REPLY
        message["message_reference"] = {
            "type": 0,
            "message_id": str(reference["message_id"]),
            "channel_id": str(reference.get("channel_id") or message["channel_id"]),
        }
        message["referenced_message"] = referenced

    def _new_attachments(
        self, payload: dict[str, Any], files: list[UploadedFile], channel_id: int
    ) -> list[dict[str, Any]]:
        meta = {str(a.get("id")): a for a in payload.get("attachments") or []}
        result = []
        for file in files:
            info = meta.get(str(file.index), {})
            result.append(
                self._cdn.store(
                    file.data,
                    info.get("filename") or file.filename,
                    channel_id=channel_id,
                    description=info.get("description"),
                )
            )
        return result

    # --- storing and editing --------------------------------------------------------------------

    def add(self, message: dict[str, Any], *, channel_post: bool = False, visible_to: int | None = None) -> None:
        message_id = int(message["id"])
        self.by_id[message_id] = message
        self.versions[message_id] = [message]
        if channel_post:
            self.channel_posts.setdefault(int(message["channel_id"]), []).append(message_id)
        if visible_to is not None:
            self.visible_to[message_id] = visible_to
        self._changed(message_id)

    def replace(self, message: dict[str, Any]) -> None:
        """Store a new version of an existing message (copy-on-write: older dicts stay untouched)."""
        message_id = int(message["id"])
        self.by_id[message_id] = message
        self.versions.setdefault(message_id, []).append(message)
        self._changed(message_id)

    def get(self, message_id: int) -> dict[str, Any]:
        message = self.by_id.get(message_id)
        if message is None:
            raise unknown_message()
        return message

    def edit(
        self, message_id: int, payload: dict[str, Any], files: list[UploadedFile], *, mark_edited: bool = True
    ) -> dict[str, Any]:
        """Apply a PATCH; EPHEMERAL and other Discord-managed flags keep their value."""
        current = self.get(message_id)
        channel_id = int(current["channel_id"])
        updated = dict(current)
        if "content" in payload:
            updated["content"] = payload["content"] or ""
        if "components" in payload:
            updated["components"] = list(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            updated["flags"] = (current["flags"] & ~EDITABLE_FLAGS) | (int(payload["flags"]) & EDITABLE_FLAGS)
        updated["flags"] &= ~LOADING
        updated["attachments"] = self._edited_attachments(current, payload, files, channel_id)
        if "embeds" in payload:
            updated["embeds"] = _normalize_embeds(payload["embeds"] or [], updated["attachments"])
        if mark_edited:
            updated["edited_timestamp"] = self._clock.iso_now()
        self.replace(updated)
        return updated

    def _edited_attachments(
        self, current: dict[str, Any], payload: dict[str, Any], files: list[UploadedFile], channel_id: int
    ) -> list[dict[str, Any]]:
        if "attachments" not in payload:
            return list(current["attachments"]) + self._new_attachments({}, files, channel_id)
        existing = {a["id"]: a for a in current["attachments"]}
        kept = [existing[str(a["id"])] for a in payload["attachments"] or [] if str(a.get("id")) in existing]
        return kept + self._new_attachments(payload, files, channel_id)

    def delete(self, message_id: int) -> dict[str, Any]:
        message = self.get(message_id)
        del self.by_id[message_id]
        self.deleted_ids.append(message_id)
        self._changed(message_id)
        return message

    def in_channel(self, channel_id: int) -> list[dict[str, Any]]:
        return [self.by_id[i] for i in self.channel_posts.get(channel_id, []) if i in self.by_id]


def _normalize_embeds(embeds: list[dict[str, Any]], attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Discord fills `type` and swaps attachment:// references for the uploaded file's URL."""
    by_name = {a["filename"]: a for a in attachments}
    result = []
    for embed in embeds:
        embed = {"type": "rich", **embed}
        for key in ("image", "thumbnail"):
            media = embed.get(key)
            if isinstance(media, dict) and str(media.get("url", "")).startswith("attachment://"):
                attachment = by_name.get(media["url"][len("attachment://") :])
                if attachment is not None:
                    embed[key] = {
                        **media,
                        "url": attachment["url"],
                        "proxy_url": attachment["proxy_url"],
                        "width": attachment.get("width"),
                        "height": attachment.get("height"),
                    }
        result.append(embed)
    return result
