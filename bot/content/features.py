"""Features as admins switch them: job features (the cost keys) grouped the way members know them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class FeatureGroup:
    title: str
    features: tuple[str, ...]


FEATURE_GROUPS: Mapping[str, FeatureGroup] = MappingProxyType(
    {
        "coloring": FeatureGroup("Coloring pages", ("coloring", "ai_coloring", "local_coloring")),
        "paint-by-numbers": FeatureGroup("Paint by numbers", ("pbn", "local_pbn")),
        "ai-images": FeatureGroup("AI images from a prompt", ("ai_image", "imagine_image")),
        "edits": FeatureGroup("AI edits of an image", ("imagine_edit",)),
        "upscale": FeatureGroup("Upscaling", ("upscale", "imagine_upscale", "local_upscale")),
        "filters": FeatureGroup("Photo filters", ("filter", "local_filter")),
        "portraits": FeatureGroup("Portrait models (training and pictures)", ("portrait_training", "portrait")),
        "styles": FeatureGroup("Style models (training and pictures)", ("style_training", "style_image")),
        "video": FeatureGroup("Video", ("imagine_video",)),
    }
)

_GROUP_OF = {feature: name for name, group in FEATURE_GROUPS.items() for feature in group.features}


def group_of(feature: str) -> str:
    """The switch that governs a job feature (a feature no group lists is its own switch)."""
    return _GROUP_OF.get(feature, feature)


def group_title(name: str) -> str:
    group = FEATURE_GROUPS.get(name)
    return group.title if group is not None else name
