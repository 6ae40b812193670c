"""Which studio makes what a member asks for: features by what they do, not by vendor.

A *kind* (image, upscale, edit, video) is offered by one or more studios, each under its own feature name
(the ledger's cost key and the adapter's feature). The studio is the member's choice, else the server's
default, else the first enabled studio in `OFFERS` order; a studio that is off is skipped (and the member is
told). The other enabled studios become the engine's Alternatives, tried when the chosen one refuses the
job before accepting it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from bot.jobs.creation import PROVIDER_NAMES, Alternative

KINDS = ("image", "upscale", "edit", "video", "coloring", "pbn", "filter")
KIND_NAMES = {
    "image": "Text-to-image",
    "upscale": "Upscale",
    "edit": "Edits",
    "video": "Video",
    "coloring": "Coloring page from a photo",
    "pbn": "Paint-by-numbers",
    "filter": "Photo filter",
}

# kind -> studio -> the studio's feature for it; order is the fall-back order when nothing is chosen.
OFFERS: dict[str, dict[str, str]] = {
    "image": {"imagine": "imagine_image", "mimipanda": "ai_image"},
    "upscale": {"imagine": "imagine_upscale", "mimipanda": "upscale", "local": "local_upscale"},
    "edit": {"imagine": "imagine_edit"},
    "video": {"imagine": "imagine_video"},
    "coloring": {"mimipanda": "coloring", "local": "local_coloring"},
    "pbn": {"mimipanda": "pbn", "local": "local_pbn"},
    "filter": {"mimipanda": "filter", "local": "local_filter"},
}
FEATURE_KINDS: dict[str, str] = {feature: kind for kind, by in OFFERS.items() for feature in by.values()}


def studio_name(studio: str) -> str:
    return PROVIDER_NAMES.get(studio, studio)


def studios_for(kind: str, enabled: Collection[str]) -> list[str]:
    """The enabled studios offering `kind`, in fall-back order."""
    return [studio for studio in OFFERS.get(kind, {}) if studio in enabled]


class NoStudio(Exception):
    """No enabled studio offers this kind."""


@dataclass(frozen=True)
class Route:
    kind: str
    studio: str
    feature: str
    others: tuple[str, ...] = ()  # enabled studios to fall over to, in order
    note: str | None = None  # for the member: why this studio and not the one asked for
    wanted: str | None = None  # the studio asked for (member or server default), when it is not `studio`
    chosen_by: str = "first"  # member | server | first

    def alternatives(self, build: Callable[[str, str], tuple[dict[str, Any], int] | None]) -> list[Alternative]:
        """The engine's Alternatives: `build(studio, feature)` gives (params, units), or None when the member's
        options do not fit that studio (it is then left out rather than given a different request)."""
        found: list[Alternative] = []
        for studio in self.others:
            built = build(studio, OFFERS[self.kind][studio])
            if built is not None:
                found.append(Alternative(studio, OFFERS[self.kind][studio], built[0], built[1]))
        return found


@dataclass
class Router:
    """Routes kinds to studios for one Easel: `enabled` are the studios that are on."""

    enabled: Collection[str]

    def studios(self, kind: str) -> list[str]:
        return studios_for(kind, self.enabled)

    def route(self, kind: str, *, member_choice: str | None = None, server_default: str | None = None) -> Route:
        """Pick the studio. The member's choice wins, then the server default, then the first enabled one;
        a wanted studio that is off hands over to the next enabled one, with a note saying so."""
        available = self.studios(kind)
        if not available:
            raise NoStudio(f"No studio that can do this ({KIND_NAMES.get(kind, kind).lower()}) is switched on.")
        wanted, chosen_by = (member_choice, "member") if member_choice else (server_default, "server")
        note = None
        if wanted is not None and wanted in available:
            studio = wanted
        else:
            studio, chosen_by = available[0], ("first" if wanted is None else chosen_by)
            if wanted is not None:
                whose = "you chose" if member_choice else "this server's default"
                offered = wanted in OFFERS.get(kind, {})
                why = "is off in this Easel" if offered else f"cannot do {KIND_NAMES.get(kind, kind).lower()}"
                note = f"ℹ️ {studio_name(wanted)} ({whose}) {why}, so {studio_name(studio)} is making this."
        others = tuple(s for s in available if s != studio)
        return Route(
            kind,
            studio,
            OFFERS[kind][studio],
            others,
            note,
            wanted if wanted != studio else None,
            chosen_by,
        )
