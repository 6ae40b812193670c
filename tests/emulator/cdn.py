"""Attachment storage and the CDN that serves it (signed-looking URLs that expire like Discord's)."""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .clock import Clock, Snowflakes

URL_LIFETIME = 24 * 3600  # Discord attachment URLs carry an `ex` expiry about a day out


@dataclass(frozen=True)
class StoredFile:
    data: bytes
    content_type: str
    expires_at: float  # emulator wall clock


def guess_content_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def image_size(data: bytes) -> tuple[int, int] | None:
    """Discord reports width/height for images; Pillow only parses the header here."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


class AttachmentStore:
    def __init__(self, ids: Snowflakes, clock: Clock) -> None:
        self._ids = ids
        self._clock = clock
        self._files: dict[int, StoredFile] = {}
        self.base_url = ""  # set once the server has its port

    def store(
        self,
        data: bytes,
        filename: str,
        *,
        channel_id: int,
        content_type: str | None = None,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        attachment_id = self._ids.next()
        content_type = content_type or guess_content_type(filename)
        expires_at = self._clock.wall() + URL_LIFETIME
        self._files[attachment_id] = StoredFile(data, content_type, expires_at)
        path = f"attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        query = f"?ex={int(expires_at):x}&is={int(self._clock.wall()):x}&hm={attachment_id:x}&"
        payload: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": f"{self.base_url}/{path}{query}",
            "proxy_url": f"{self.base_url}/media/{path}{query}",
            "content_type": content_type,
        }
        if description is not None:
            payload["description"] = description
        if ephemeral:
            payload["ephemeral"] = True
        if content_type.startswith("image/"):
            size = image_size(data)
            if size is not None:
                payload["width"], payload["height"] = size
        return payload

    def bytes_of(self, attachment: dict[str, Any]) -> bytes:
        stored = self._files.get(int(attachment["id"]))
        if stored is None:
            raise KeyError(f"emulator: no stored file for attachment {attachment.get('id')}")
        return stored.data

    async def serve(self, request: web.Request) -> web.Response:
        stored = self._files.get(int(request.match_info["attachment_id"]))
        if stored is None or self._clock.wall() > stored.expires_at:
            return web.Response(status=404, text="This content is no longer available.")
        return web.Response(body=stored.data, headers={"Content-Type": stored.content_type})
