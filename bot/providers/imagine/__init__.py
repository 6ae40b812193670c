"""Imagine (Vyro) v2: the adapter, its request models and the documented choices commands offer."""

from bot.providers.imagine.adapter import ImagineAdapter
from bot.providers.imagine.choices import (
    BACKGROUND_STYLES,
    CHOICES,
    IMAGE_ASPECTS,
    IMAGE_STYLES,
    VIDEO_ASPECTS,
    VIDEO_STYLES,
)
from bot.providers.imagine.models import (
    EditParams,
    ImageParams,
    UpscaleParams,
    VideoParams,
)

__all__ = [
    "BACKGROUND_STYLES",
    "CHOICES",
    "IMAGE_ASPECTS",
    "IMAGE_STYLES",
    "VIDEO_ASPECTS",
    "VIDEO_STYLES",
    "EditParams",
    "ImageParams",
    "ImagineAdapter",
    "UpscaleParams",
    "VideoParams",
]
