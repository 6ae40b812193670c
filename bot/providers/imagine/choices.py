"""Imagine's documented choices with member-facing labels, for the commands' option lists and validation."""

from __future__ import annotations

from typing import Literal, get_args

ImageStyle = Literal["imagine-turbo", "realistic", "anime", "flux-schnell", "flux-dev", "flux-dev-fast", "sdxl-1.0"]
IMAGE_STYLES: dict[str, str] = {
    "imagine-turbo": "Imagine Turbo (fast, default)",
    "realistic": "Realistic",
    "anime": "Anime",
    "flux-schnell": "Flux Schnell",
    "flux-dev": "Flux Dev",
    "flux-dev-fast": "Flux Dev (fast)",
    "sdxl-1.0": "SDXL 1.0",
}
DEFAULT_IMAGE_STYLE = "imagine-turbo"

ImageAspect = Literal["1:1", "3:2", "4:3", "3:4", "16:9", "9:16"]
ASPECT_LABELS: dict[str, str] = {
    "1:1": "1:1 square",
    "3:2": "3:2 landscape",
    "4:3": "4:3 landscape",
    "3:4": "3:4 portrait",
    "16:9": "16:9 widescreen",
    "9:16": "9:16 tall (phone)",
}
IMAGE_ASPECTS: dict[str, str] = {ratio: ASPECT_LABELS[ratio] for ratio in get_args(ImageAspect)}
DEFAULT_ASPECT = "1:1"

BackgroundStyle = Literal["product-shoot"]
BACKGROUND_STYLES: dict[str, str] = {"product-shoot": "Product shoot"}

VideoAspect = Literal["1:1", "16:9", "9:16"]
VIDEO_ASPECTS: dict[str, str] = {ratio: ASPECT_LABELS[ratio] for ratio in get_args(VideoAspect)}
# The docs name one video style "e.g."; the list is open, so any plausible slug is sent and the API decides.
VIDEO_STYLES: dict[str, str] = {"kling-1.0-pro": "Kling 1.0 Pro"}
DEFAULT_VIDEO_STYLE = "kling-1.0-pro"

# Per operation, what a command may offer: (style choices, aspect ratio choices); empty = not offered.
CHOICES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "generate": (IMAGE_STYLES, IMAGE_ASPECTS),
    "transparent": ({}, IMAGE_ASPECTS),
    "background": (BACKGROUND_STYLES, {}),
    "video_text": (VIDEO_STYLES, VIDEO_ASPECTS),
    "video_image": (VIDEO_STYLES, {}),
}
