"""Training images made acceptable to Flair before upload: webp, png or jpeg, at most 10 MB [seed].

Accepted images are sent byte for byte. HEIC (phones) and other readable formats are converted to JPEG;
an oversize image is re-encoded and shrunk until it fits. CPU work: call `prepare_upload` in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.media import MediaError, fit_within, identify, to_jpeg
from bot.providers.flair.models import UPLOAD_MAX_BYTES

ACCEPTED = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@dataclass(frozen=True)
class Upload:
    data: bytes
    content_type: str
    converted: bool  # False: the member's own bytes, untouched


def prepare_upload(data: bytes, *, limit: int = UPLOAD_MAX_BYTES) -> Upload:
    """The image as Flair accepts it; MediaError if it is not an image or cannot be made small enough."""
    info = identify(data)
    if info.kind != "image":
        raise MediaError(f"a {info.format.upper()} file is not an image")
    if info.format in ACCEPTED and len(data) <= limit:
        return Upload(data, ACCEPTED[info.format], converted=False)
    jpeg = data if info.format == "jpeg" else to_jpeg(data)
    fitted = fit_within(jpeg, limit)
    if fitted is None:
        raise MediaError("a training image could not be made small enough to upload (10 MB)")
    out, fmt = fitted
    return Upload(out, ACCEPTED.get(fmt, "image/jpeg"), converted=True)
