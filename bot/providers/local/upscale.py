"""Upscale 2× or 4×: better than a plain Lanczos resize, on one CPU core.

The luma is enlarged with bicubic interpolation, then made consistent with the input by back-projection (the
enlarged picture, shrunk again, must give back the input: the error is enlarged and added); its edges are then
steepened by a weak toggle-contrast step (each pixel moves a little towards the nearer of its local minimum and
maximum) and cleaned of ringing by total-variation steps, each followed by a back-projection so that nothing
is invented that the input contradicts. Chroma, smooth in photos, gets bicubic plus one back-projection. The
work runs in horizontal strips so memory stays bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from .art_files import PHOTO_PNG_MAX_PIXELS, encode_jpeg, encode_png, is_photo, split_alpha, with_alpha
from .common import Output, Rendered, RenderError, open_capped

MAX_OUTPUT_SIDE = 8192
MAX_OUTPUT_PIXELS = 24_000_000
# Below this enlargement of the original (after the caps) the job is refused: it would only cost time.
MIN_ENLARGEMENT = 1.1
# Input rows per strip, and rows of context on each side (enough for the bicubic and 3×3 kernels, twice over).
STRIP_ROWS = 256
STRIP_MARGIN = 8


@dataclass(frozen=True)
class Tuning:
    toggle_weight: float  # how far a pixel moves towards its nearer local extreme, at most
    toggle_edge: float  # local contrast (0..255) at which the toggle step reaches its full weight
    tv_step: float  # size of each total-variation step (grey levels)
    tv_rounds: int


# Tuned on bench/upscale.py (photos shrunk by area averaging, PSNR against the originals).
TUNING = {2: Tuning(0.15, 40.0, 0.7, 2), 4: Tuning(0.25, 60.0, 1.0, 2)}

_KERNEL_3X3 = np.ones((3, 3), np.uint8)


class UpscaleOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    factor: Literal[2, 4] = 2


def _back_project(estimate: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Add the enlarged residual between the input and the shrunk estimate."""
    shrunk = cv2.resize(estimate, (low.shape[1], low.shape[0]), interpolation=cv2.INTER_AREA)
    residual = cv2.resize(low - shrunk, (estimate.shape[1], estimate.shape[0]), interpolation=cv2.INTER_CUBIC)
    improved: np.ndarray = estimate + residual
    return improved


def _toggle(plane: np.ndarray, weight_max: float, edge: float) -> np.ndarray:
    """Move each pixel towards the nearer local extreme, in proportion to the local contrast: edges get steeper,
    flat areas and fine noise are left alone."""
    high = cv2.dilate(plane, _KERNEL_3X3)
    low = cv2.erode(plane, _KERNEL_3X3)
    target = np.where(plane * 2.0 > high + low, high, low)
    weight = np.minimum((high - low) * (weight_max / edge), weight_max)
    moved: np.ndarray = plane + weight * (target - plane)
    return moved


def _tv_step(plane: np.ndarray, step: float) -> np.ndarray:
    """One descent step on the total variation: smooths along edges and flattens ripples, without blurring
    across edges (the gradient is normalised)."""
    gx = np.zeros_like(plane)
    gy = np.zeros_like(plane)
    gx[:, :-1] = plane[:, 1:] - plane[:, :-1]
    gy[:-1, :] = plane[1:, :] - plane[:-1, :]
    norm = np.sqrt(gx * gx + gy * gy + 1.0)
    nx, ny = gx / norm, gy / norm
    divergence = nx + ny
    divergence[:, 1:] -= nx[:, :-1]
    divergence[1:, :] -= ny[:-1, :]
    stepped: np.ndarray = plane + step * divergence
    return stepped


def upscale_luma(low: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge one float32 plane by 2 or 4 (see the module's docstring)."""
    tuning = TUNING[factor]
    size = (low.shape[1] * factor, low.shape[0] * factor)
    estimate = cv2.resize(low, size, interpolation=cv2.INTER_CUBIC)
    estimate = _back_project(estimate, low)
    estimate = _back_project(_toggle(estimate, tuning.toggle_weight, tuning.toggle_edge), low)
    for _ in range(tuning.tv_rounds):
        estimate = _back_project(_tv_step(estimate, tuning.tv_step), low)
    return estimate


def _upscale_chroma(low: np.ndarray, factor: int) -> np.ndarray:
    estimate = cv2.resize(low, (low.shape[1] * factor, low.shape[0] * factor), interpolation=cv2.INTER_CUBIC)
    return _back_project(estimate, low)


def upscale_rgb(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge an RGB uint8 array by an integer factor, strip by strip."""
    height, width = rgb.shape[:2]
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    out = np.empty((height * factor, width * factor, 3), np.uint8)
    for top in range(0, height, STRIP_ROWS):
        bottom = min(height, top + STRIP_ROWS)
        a, b = max(0, top - STRIP_MARGIN), min(height, bottom + STRIP_MARGIN)
        strip = ycc[a:b]
        planes = [upscale_luma(strip[..., 0].astype(np.float32), factor)]
        planes += [_upscale_chroma(strip[..., c].astype(np.float32), factor) for c in (1, 2)]
        big = np.clip(cv2.merge(planes) + 0.5, 0, 255).astype(np.uint8)
        keep = big[(top - a) * factor : (bottom - a) * factor]
        out[top * factor : bottom * factor] = cv2.cvtColor(keep, cv2.COLOR_YCrCb2RGB)
    return out


def _plan(width: int, height: int, factor: int) -> tuple[float, bool]:
    """Scale to apply to the input before the integer enlargement (1.0 unless the caps bite), and whether the
    caps bit. Refuses when the capped result would hardly be larger than the input."""
    limit = min(
        MAX_OUTPUT_SIDE / (max(width, height) * factor), math.sqrt(MAX_OUTPUT_PIXELS / (width * height)) / factor
    )
    if limit >= 1.0:
        return 1.0, False
    if limit * factor < MIN_ENLARGEMENT:
        raise RenderError(
            f"that image is already {width}×{height} px; upscaled pictures are capped at {MAX_OUTPUT_SIDE} px "
            f"on the long side and {MAX_OUTPUT_PIXELS // 1_000_000} megapixels, so it cannot be enlarged"
        )
    return limit, True


def render_upscale(data: bytes, params: dict[str, Any]) -> Rendered:
    cv2.setNumThreads(1)
    try:
        options = UpscaleOptions.model_validate(params)
    except ValidationError as exc:
        raise RenderError("upscale factor must be 2 or 4") from exc
    image = open_capped(data)
    rgb, alpha = split_alpha(image)
    height, width = rgb.shape[:2]
    pre_scale, capped = _plan(width, height, options.factor)
    if capped:
        # Shrinking first keeps the integer-factor method (exact strip geometry) and bounds time and memory.
        size = (max(1, int(width * pre_scale)), max(1, int(height * pre_scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if alpha is not None:
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    out = upscale_rgb(rgb, options.factor)
    out_h, out_w = out.shape[:2]
    if alpha is not None:
        big_alpha = cv2.resize(alpha, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
        data_out, name = encode_png(with_alpha(out, big_alpha), compression=3), "upscaled.png"
    elif out_w * out_h > PHOTO_PNG_MAX_PIXELS and is_photo(rgb):
        data_out, name = encode_jpeg(out), "upscaled.jpg"
    else:
        data_out, name = encode_png(out, compression=3), "upscaled.png"
    meta: dict[str, Any] = {
        "factor": options.factor,
        "input_size": f"{width}×{height}",
        "output_size": f"{out_w}×{out_h}",
        "output_cap": f"{MAX_OUTPUT_SIDE} px long side, {MAX_OUTPUT_PIXELS // 1_000_000} MP",
    }
    if capped:
        meta["capped"] = f"enlarged {out_w / width:.2f}× instead of {options.factor}× (output cap)"
    return Rendered(files=[Output(filename=name, data=data_out, label="upscaled")], meta=meta)
