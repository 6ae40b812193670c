"""Reading members' attachments for a job: size first (cheap), then download, then content checks."""

from __future__ import annotations

import discord

from bot.errors import BadInput
from bot.jobs.engine import NewInput
from bot.media import MediaError, MediaInfo, check_image_async, describe_size

IMAGE_FORMATS = ("jpeg", "png", "webp", "heic")


async def read_image(
    attachment: discord.Attachment,
    *,
    name: str = "image",
    position: int = 0,
    allowed: tuple[str, ...] = IMAGE_FORMATS,
    max_bytes: int = 20 * 1024 * 1024,
    max_side: int | None = None,
    min_side: int = 1,
    label: str | None = None,
) -> NewInput:
    """Download an attachment and check it is an acceptable image by its content; BadInput otherwise."""
    label = label or f"`{attachment.filename}`"
    if attachment.size > max_bytes:
        raise BadInput(f"{label} is {describe_size(attachment.size)}; the limit is {describe_size(max_bytes)}.")
    try:
        data = await attachment.read()
    except discord.HTTPException as exc:
        raise BadInput(f"I could not download {label} from Discord ({exc.status}); please attach it again.") from exc
    info = await check_image_bytes(
        data, allowed=allowed, max_bytes=max_bytes, max_side=max_side, min_side=min_side, label=label
    )
    return NewInput(name=name, filename=attachment.filename, data=data, info=info, position=position)


async def check_image_bytes(data: bytes, *, label: str, **limits: object) -> MediaInfo:
    try:
        return await check_image_async(data, label=label, **limits)
    except MediaError as exc:
        raise BadInput(str(exc)) from exc
