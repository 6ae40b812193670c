"""Where each region's number goes, and how big: a box around the digits, clear of every border, must fit
wholly inside the region (tested for all regions at once with a min/max filter of the region map)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

# Helvetica/Arial proportions: digits are ~0.71 em tall and 0.556 em wide.
DIGIT_HEIGHT_EM = 0.71
DIGIT_WIDTH_EM = 0.556


@dataclass(frozen=True)
class LabelGeometry:
    mm_per_px: float
    font_sizes_mm: tuple[float, ...] = (1.72, 2.2, 2.8)  # smallest first; 1.72 mm makes 1.22 mm tall digits
    clearance_mm: float = 0.22  # 0.15 mm clear of the border + half the (0.15 mm) border line

    def box_px(self, size_index: int, digits: int) -> tuple[int, int]:
        """Width and height (px) of the box a label of `digits` digits needs, with its clearance; a quarter
        pixel more on each side because borders are drawn smoothed, not on the pixel grid."""
        font = self.font_sizes_mm[size_index]
        extra = 2 * self.clearance_mm + 0.5 * self.mm_per_px
        width = (digits * DIGIT_WIDTH_EM * font + extra) / self.mm_per_px
        height = (DIGIT_HEIGHT_EM * font + extra) / self.mm_per_px
        return math.ceil(width - 1e-6), math.ceil(height - 1e-6)


@dataclass(frozen=True)
class LabelSpot:
    region: int
    number: int
    x: float  # centre of the digits, in working px (pixel i spans [i, i + 1])
    y: float
    font_mm: float
    fits: bool  # False: no room even at the smallest size (placed at the region's most inner point anyway)


def fit_masks(
    regions: np.ndarray, geometry: LabelGeometry, size_index: int, digit_counts: Iterable[int]
) -> dict[int, np.ndarray]:
    """For each digit count: where a label box centred on the pixel lies wholly inside that pixel's region
    (the picture's edge counts as a border)."""
    out: dict[int, np.ndarray] = {}
    for digits in digit_counts:
        width, height = geometry.box_px(size_index, digits)
        pad = max(width, height)
        padded = cv2.copyMakeBorder(regions.astype(np.float32), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=-1)
        kernel = np.ones((height, width), dtype=np.uint8)
        low = cv2.erode(padded, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=-1)
        high = cv2.dilate(padded, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=-1)
        out[digits] = (low == high)[pad:-pad, pad:-pad]
    return out


def place_labels(
    regions: np.ndarray, region_class: np.ndarray, distance: np.ndarray, geometry: LabelGeometry
) -> list[LabelSpot]:
    """One label per region, at the largest size that fits, at the innermost point where it fits."""
    count = len(region_class)
    numbers = region_class + 1
    digits = np.array([len(str(int(n))) for n in numbers])
    pixel_digits = digits[regions]
    chosen: dict[int, LabelSpot] = {}
    for size_index in reversed(range(len(geometry.font_sizes_mm))):
        masks = fit_masks(regions, geometry, size_index, sorted(set(digits.tolist())))
        fit = np.zeros(regions.shape, dtype=bool)
        for n_digits, mask in masks.items():
            fit |= mask & (pixel_digits == n_digits)
        font = geometry.font_sizes_mm[size_index]
        for r, (y, x) in _argmax_per_region(np.where(fit, distance + 1.0, 0.0), regions, count).items():
            if r not in chosen:
                # Pixel x spans [x, x + 1]. An odd window anchored there is centred on x + 0.5; an even one
                # spans x - w/2 .. x + w/2 - 1, so its centre is x.
                width, height = geometry.box_px(size_index, int(digits[r]))
                cx, cy = x + 0.5 * (width % 2), y + 0.5 * (height % 2)
                chosen[r] = LabelSpot(r, int(numbers[r]), float(cx), float(cy), font, True)
    if len(chosen) < count:
        for r, (y, x) in _argmax_per_region(distance + 1.0, regions, count).items():
            if r not in chosen:
                spot = LabelSpot(r, int(numbers[r]), x + 0.5, y + 0.5, geometry.font_sizes_mm[0], False)
                chosen[r] = spot
    return [chosen[r] for r in range(count)]


def _argmax_per_region(score: np.ndarray, regions: np.ndarray, count: int) -> dict[int, tuple[int, int]]:
    """(row, col) of the highest positive score in each region that has one."""
    flat_score, flat_regions = score.ravel(), regions.ravel()
    best = np.zeros(count, dtype=score.dtype)
    np.maximum.at(best, flat_regions, flat_score)
    hits = np.flatnonzero((flat_score > 0) & (flat_score == best[flat_regions]))
    found, first = np.unique(flat_regions[hits], return_index=True)
    rows, cols = np.divmod(hits[first], regions.shape[1])
    return {int(r): (int(y), int(x)) for r, y, x in zip(found, rows, cols, strict=True)}
