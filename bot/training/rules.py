"""What differs between studios' training sets: counts, sizes, how an image is stored, the words shown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.training.images import Prepared


@dataclass(frozen=True)
class Rules:
    studio: str  # "portrait" (mimpi) | "style" (Flair): the store's `studio`
    noun: str  # "photo" | "image"
    command: str  # the command group, e.g. "/portrait"
    min_images: int
    recommended_images: int
    max_images: int
    max_bytes: int  # per attachment, before preparing
    min_side: int  # smaller pictures teach a model nothing
    prepare: Callable[[bytes], Prepared]  # CPU work: run in a thread

    def plural(self, count: int) -> str:
        return f"{count} {self.noun}{'s' if count != 1 else ''}"

    def limits_text(self) -> str:
        return (
            f"at least {self.min_images} to train, {self.recommended_images} or more recommended, "
            f"at most {self.max_images}"
        )
