"""What things cost and what members get when nobody configured anything."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Period(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"  # resets on Mondays
    MONTHLY = "monthly"  # resets on the 1st

    @property
    def noun(self) -> str:
        return {Period.DAILY: "day", Period.WEEKLY: "week", Period.MONTHLY: "month"}[self]


# Credits per unit (per image, per training, ...). The one table of defaults; servers override per feature.
DEFAULT_COSTS = MappingProxyType(
    {
        # mimipanda
        "coloring": 1,
        "ai_coloring": 2,
        "pbn": 3,
        "ai_image": 1,
        "upscale": 2,
        "filter": 1,
        # mimpi
        "portrait_training": 50,
        "portrait": 1,
        # flair
        "style_training": 50,
        "style_image": 1,
        # imagine
        "imagine_image": 1,
        "imagine_edit": 2,
        "imagine_upscale": 2,
        "imagine_video": 10,
        # Easel's own studio: runs on the bot's machine, free unless an admin sets a cost
        "local_coloring": 0,
        "local_pbn": 0,
        "local_upscale": 0,
        "local_filter": 0,
    }
)
FEATURES = frozenset(DEFAULT_COSTS)


class QuotaPolicy(BaseModel):
    """Defaults for servers that configured nothing, and the policy for DMs (which have no admins)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    server_allowance: int = Field(default=20, ge=0)
    server_period: Period = Period.DAILY
    server_reset_hour: int = Field(default=0, ge=0, le=23)
    dm_allowance: int = Field(default=10, ge=0)
    dm_period: Period = Period.DAILY
    dm_reset_hour: int = Field(default=0, ge=0, le=23)
    dm_budget: int | None = Field(default=None, ge=0)  # total DM spend per period across all users
    # Partial overrides of DEFAULT_COSTS; missing features keep their default.
    costs: dict[str, int] = Field(default_factory=dict)

    @field_validator("costs")
    @classmethod
    def _known_costs(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - FEATURES)
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {sorted(FEATURES)}")
        negative = sorted(k for k, v in value.items() if v < 0)
        if negative:
            raise ValueError(f"costs must not be negative: {negative}")
        return {**DEFAULT_COSTS, **value}

    def cost(self, feature: str) -> int:
        return self.costs.get(feature, DEFAULT_COSTS[feature])
