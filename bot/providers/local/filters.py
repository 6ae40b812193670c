"""Photo filters people actually use: pencil sketch, watercolour, oil, cartoon and posterise.

Each effect is computed at the picture's own size (up to a working cap) with kernel sizes relative to that size,
so a thumbnail and a 24 MP photo get the same look. `strength` blends the effect over the original (for
posterise it sets how few tones are left). Transparency is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .art_files import PHOTO_PNG_MAX_PIXELS, encode_jpeg, encode_png, fit_side, is_photo, split_alpha, with_alpha
from .common import Output, Rendered, RenderError, open_capped

WORK_SIDE = 2560  # longest side of the result; larger inputs are shrunk first

FilterName = Literal["pencil", "watercolor", "oil", "cartoon", "posterize"]


class FilterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: FilterName
    strength: float = Field(default=0.6, ge=0.2, le=1.0)


def _odd(value: float, minimum: int = 3) -> int:
    size = max(minimum, round(value))
    return size if size % 2 else size + 1


def _to_uint8(values: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.clip(values, 0, 255).astype(np.uint8)
    return out


def _unit(rgb: np.ndarray) -> float:
    """One 'pixel' of effect: kernels are multiples of the long side / 1000, so looks do not depend on size."""
    return float(max(rgb.shape[:2])) / 1000.0


def pencil(rgb: np.ndarray) -> np.ndarray:
    """Colour-dodge of the grey picture by its blurred negative: edges become graphite strokes on white paper;
    a faint diagonal hatch texture follows the tones."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    sigma = max(1.0, 6.0 * _unit(rgb))
    blurred = cv2.GaussianBlur(255.0 - grey, (0, 0), sigma)
    sketch = np.clip(grey * 255.0 / np.maximum(255.0 - blurred, 1.0), 0, 255)
    # Deepen the strokes (the dodge alone is pale) and shade dark areas lightly, like pressed graphite.
    sketch = 255.0 * (sketch / 255.0) ** 2.2
    shade = cv2.GaussianBlur(grey, (0, 0), sigma * 2) / 255.0
    height, width = grey.shape
    yy, xx = np.mgrid[0:height, 0:width]
    period = max(3.0, 4.0 * _unit(rgb))
    hatch = (np.sin((xx + yy) * (2 * np.pi / period)) > 0.3).astype(np.float32)
    sketch -= hatch * np.clip(0.55 - shade, 0, 0.55) * 90.0
    out = np.clip(sketch, 0, 255).astype(np.uint8)
    return np.asarray(cv2.cvtColor(out, cv2.COLOR_GRAY2RGB))


def watercolor(rgb: np.ndarray) -> np.ndarray:
    """Flat washes (mean-shift filtering at a reduced size: washes have no fine detail) that bleed softly into
    each other, pigment pooling at their borders, transparent tones lifted towards the paper, and paper grain."""
    height, width = rgb.shape[:2]
    small = fit_side(rgb, 640)
    washes = cv2.pyrMeanShiftFiltering(small, 8, 28)
    washes = cv2.medianBlur(washes, 5)
    washes = cv2.resize(washes, (width, height), interpolation=cv2.INTER_CUBIC)
    unit = _unit(rgb)
    soft = cv2.GaussianBlur(washes, (0, 0), 1.5 * unit + 0.5).astype(np.float32)
    # Pigment gathers where washes meet: a thin, slightly darker rim along the borders of the flat areas.
    grey = cv2.cvtColor(washes, cv2.COLOR_RGB2GRAY).astype(np.float32)
    rim = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    rim = cv2.GaussianBlur(rim, (0, 0), unit + 0.5)
    soft *= (1.0 - np.clip(rim / 255.0, 0, 0.12))[..., None]
    # Watercolour is transparent: lift the tones towards the white paper.
    soft = soft * 0.85 + 255.0 * 0.15
    # Paper grain: low-contrast blurred noise, deterministic so the same photo gives the same painting.
    noise = np.random.default_rng(7).normal(0.0, 1.0, (height, width)).astype(np.float32)
    grain: np.ndarray = cv2.GaussianBlur(noise, (0, 0), max(0.8, 1.2 * unit))
    grain = grain / (float(grain.std()) + 1e-6)
    return _to_uint8(soft + (grain * 3.5)[..., None])


def oil(rgb: np.ndarray) -> np.ndarray:
    """Kuwahara filter (each pixel takes the mean of its least varied quadrant: flat strokes with crisp
    borders), richer colours, and a light relief from the stroke texture."""
    radius = max(2, round(5 * _unit(rgb)))
    img = rgb.astype(np.float32)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    k = radius + 1
    mean = cv2.boxFilter(img, -1, (k, k), anchor=(0, 0), borderType=cv2.BORDER_REFLECT)
    mean_g = cv2.boxFilter(grey, -1, (k, k), anchor=(0, 0), borderType=cv2.BORDER_REFLECT)
    var = cv2.boxFilter(grey * grey, -1, (k, k), anchor=(0, 0), borderType=cv2.BORDER_REFLECT) - mean_g**2
    # The box anchored at its top-left corner covers the quadrant below-right of a pixel; shifting by `radius`
    # gives the three other quadrants.
    best = np.full(grey.shape, np.inf, np.float32)
    out = np.zeros_like(img)
    padded_var = cv2.copyMakeBorder(var, radius, 0, radius, 0, cv2.BORDER_REPLICATE)
    padded_mean = cv2.copyMakeBorder(mean, radius, 0, radius, 0, cv2.BORDER_REPLICATE)
    height, width = grey.shape
    for dy in (0, radius):
        for dx in (0, radius):
            quad_var = padded_var[radius - dy : radius - dy + height, radius - dx : radius - dx + width]
            quad_mean = padded_mean[radius - dy : radius - dy + height, radius - dx : radius - dx + width]
            better = quad_var < best
            best = np.where(better, quad_var, best)
            out = np.where(better[..., None], quad_mean, out)
    hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.2, 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    # Relief: light from the top-left on the painted surface.
    relief = cv2.filter2D(
        cv2.cvtColor(out.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32),
        -1,
        np.array([[-1, -1, 0], [-1, 0, 1], [0, 1, 1]], np.float32),
    )
    out += (np.clip(relief, -60, 60) * 0.15)[..., None]
    return _to_uint8(out)


def _smooth_colours(rgb: np.ndarray, passes: int) -> np.ndarray:
    """Repeated bilateral filtering at a reduced size: flat colour areas that keep their borders."""
    height, width = rgb.shape[:2]
    small = fit_side(rgb, 800)
    for _ in range(passes):
        small = cv2.bilateralFilter(small, 9, 40, 7)
    return np.asarray(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR))


def cartoon(rgb: np.ndarray) -> np.ndarray:
    """Flat, few colours (bilateral smoothing then quantisation) with dark outlines; outlines are found on the
    smoothed picture and short ones dropped, so fur and grain do not turn into a rash of dots."""
    flat = _smooth_colours(rgb, 5)
    unit = _unit(rgb)
    grey = cv2.medianBlur(cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY), _odd(3 * unit))
    dark = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, _odd(9 * unit), 6)
    count, components, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(6.0, 40.0 * unit * unit)
    outline = keep[components]
    if unit >= 1.5:  # thicken a little so outlines read on large pictures
        outline = cv2.dilate(outline.astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
    quantised = (flat // 24) * 24 + 12
    toned: np.ndarray = np.where(outline[..., None], (quantised * 0.15).astype(np.uint8), quantised)
    return toned.astype(np.uint8)


def posterize(rgb: np.ndarray, levels: int) -> np.ndarray:
    """Few flat tones per channel (after a light median so noise does not turn into speckle)."""
    smooth = cv2.medianBlur(rgb, _odd(2 * _unit(rgb)))
    step = 256.0 / levels
    index = np.floor(smooth.astype(np.float32) / step)
    return _to_uint8(index * (255.0 / max(1, levels - 1)))


def _posterize_levels(strength: float) -> int:
    return round(8 - 6 * (strength - 0.2) / 0.8)  # 0.2 -> 8 tones per channel, 1.0 -> 2


_BLENDED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "pencil": pencil,
    "watercolor": watercolor,
    "oil": oil,
    "cartoon": cartoon,
}


def apply_filter(rgb: np.ndarray, options: FilterOptions) -> np.ndarray:
    if options.filter == "posterize":
        return posterize(rgb, _posterize_levels(options.strength))
    effect = _BLENDED[options.filter](rgb)
    if options.strength >= 1.0:
        return effect
    return cv2.addWeighted(effect, options.strength, rgb, 1.0 - options.strength, 0.0)


def render_filter(data: bytes, params: dict[str, Any]) -> Rendered:
    cv2.setNumThreads(1)
    try:
        options = FilterOptions.model_validate(params)
    except ValidationError as exc:
        raise RenderError(
            "filter must be one of pencil, watercolor, oil, cartoon, posterize, and strength between 0.2 and 1"
        ) from exc
    image = open_capped(data, work_side=WORK_SIDE)
    rgb, alpha = split_alpha(image)
    rgb = fit_side(rgb, WORK_SIDE)
    out = apply_filter(np.ascontiguousarray(rgb), options)
    height, width = out.shape[:2]
    if alpha is not None:
        payload, name = encode_png(with_alpha(out, alpha), compression=3), f"{options.filter}.png"
    elif width * height > PHOTO_PNG_MAX_PIXELS and is_photo(out):
        payload, name = encode_jpeg(out), f"{options.filter}.jpg"
    else:
        payload, name = encode_png(out, compression=3), f"{options.filter}.png"
    meta = {"filter": options.filter, "strength": options.strength, "size": f"{width}×{height}"}
    return Rendered(files=[Output(filename=name, data=payload, label="filtered")], meta=meta)
