"""Which renderer serves which local feature, and what each costs by default.

Renderers are named as "module:function" strings, imported only inside the worker processes: the bot's own
process never loads OpenCV, scikit-image or reportlab for them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LocalFeature:
    feature: str  # the job feature (and quota feature) name
    renderer: str  # "module:function", a (bytes, dict) -> Rendered
    default_cost: int  # credits per job when the server configured nothing (the quota policy owns costs)
    summary: str


# Default costs are 0: the work runs on the operator's own machine, with no provider bill behind it.
FEATURES: dict[str, LocalFeature] = {
    f.feature: f
    for f in (
        LocalFeature("local_coloring", "bot.providers.local.lineart:render_coloring", 0, "coloring page from a photo"),
        LocalFeature("local_pbn", "bot.providers.local.pbn:render_pbn", 0, "paint-by-numbers sheet and palette"),
        LocalFeature("local_upscale", "bot.providers.local.upscale:render_upscale", 0, "enlarge an image"),
        LocalFeature("local_filter", "bot.providers.local.filters:render_filter", 0, "photo filter"),
    )
}

RENDERERS: dict[str, str] = {name: f.renderer for name, f in FEATURES.items()}
DEFAULT_COSTS: dict[str, int] = {name: f.default_cost for name, f in FEATURES.items()}
