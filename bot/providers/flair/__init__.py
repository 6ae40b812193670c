"""Flair AI Custom Model API (seed 001, docs/providers.md §2): custom style models and style images."""

from bot.providers.flair.adapter import IMAGE, TRAINING, FlairAdapter
from bot.providers.flair.client import FlairClient, TooLateToCancel
from bot.providers.flair.upload_log import MemoryUploadLog, StartState, UploadLog

__all__ = [
    "IMAGE",
    "TRAINING",
    "FlairAdapter",
    "FlairClient",
    "MemoryUploadLog",
    "StartState",
    "TooLateToCancel",
    "UploadLog",
]
