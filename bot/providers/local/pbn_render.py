"""Drawing a segmentation: vector outlines (SVG, PDF), the numbered template and the coloured preview (PNG)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bot.providers.local.pbn_labels import DIGIT_HEIGHT_EM, LabelSpot

BORDER_GRAY = 120  # outlines light enough to vanish under paint
INK_GRAY = 60
BORDER_MM = 0.15
OUTLINE_SIGMA_PX = 0.7  # smoothing of each region's mask before tracing its 0.5 level line
SIMPLIFY_PX = 0.25
OUTLINE_UPSAMPLE = 4


@dataclass(frozen=True)
class Layout:
    """Where the picture sits on the printed canvas, in mm, and the scale of working pixels."""

    canvas_mm: tuple[float, float]
    offset_mm: tuple[float, float]
    mm_per_px: float


def region_outlines(regions: np.ndarray, count: int) -> list[list[np.ndarray]]:
    """Closed outlines of each region (outer edge and holes), as (x, y) float arrays in working px with the
    picture spanning [0, W] × [0, H]. Each is the 0.5 level of the region's lightly blurred mask, traced at
    4× resolution, so two regions sharing a border trace it within a quarter pixel of each other."""
    height, width = regions.shape
    pad, up = 3, OUTLINE_UPSAMPLE
    ys, xs = np.indices(regions.shape, dtype=np.int32)
    flat = regions.ravel()
    x0 = np.full(count, width, dtype=np.int32)
    y0 = np.full(count, height, dtype=np.int32)
    x1 = np.zeros(count, dtype=np.int32)
    y1 = np.zeros(count, dtype=np.int32)
    np.minimum.at(x0, flat, xs.ravel())
    np.minimum.at(y0, flat, ys.ravel())
    np.maximum.at(x1, flat, xs.ravel())
    np.maximum.at(y1, flat, ys.ravel())
    out: list[list[np.ndarray]] = []
    for r in range(count):
        crop = regions[y0[r] : y1[r] + 1, x0[r] : x1[r] + 1]
        mask = np.pad((crop == r).astype(np.float32), pad)
        blurred = cv2.GaussianBlur(mask, (0, 0), OUTLINE_SIGMA_PX)
        big = cv2.resize(blurred, (mask.shape[1] * up, mask.shape[0] * up), interpolation=cv2.INTER_LINEAR)
        contours, _ = cv2.findContours((big >= 0.5).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        rings: list[np.ndarray] = []
        for contour in contours:
            # Upsampled pixel i covers [i/up, (i+1)/up] of the padded crop: its centre is (i + 0.5) / up.
            xy = (_soften(contour.reshape(-1, 2).astype(np.float32)) + 0.5) / up + (x0[r] - pad, y0[r] - pad)
            xy = np.clip(xy, [0, 0], [width, height]).astype(np.float32)
            simple = cv2.approxPolyDP(xy.reshape(-1, 1, 2), SIMPLIFY_PX, True).reshape(-1, 2)
            if len(simple) >= 3:
                rings.append(simple)
        out.append(rings)
    return out


_SOFTEN = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16


def _soften(points: np.ndarray) -> np.ndarray:
    """A closed traced contour with its grid staircase rounded off (binomial filter along the curve)."""
    if len(points) < 8:
        return points
    padded = np.concatenate([points[-2:], points, points[:2]])
    return np.stack([np.convolve(padded[:, i], _SOFTEN, mode="valid") for i in range(2)], axis=1)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _path_data(rings: Sequence[np.ndarray], scale: float, dx: float, dy: float) -> str:
    parts = []
    for ring in rings:
        points = ring * scale + (dx, dy)
        coords = " ".join(f"{_fmt(x)} {_fmt(y)}" for x, y in points)
        parts.append(f"M{coords}Z")
    return "".join(parts)


def template_svg(
    outlines: Sequence[Sequence[np.ndarray]],
    region_class: np.ndarray,
    labels: Sequence[LabelSpot],
    palette_hex: Sequence[str],
    layout: Layout,
) -> bytes:
    """The numbered template as SVG in mm at the canvas size. Each region is a path with class "cN" (its
    colour number) and data-fill holding its colour, so a viewer can colour it in with one style rule."""
    width, height = layout.canvas_mm
    dx, dy = layout.offset_mm
    s = layout.mm_per_px
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(width)}mm" height="{_fmt(height)}mm" '
        f'viewBox="0 0 {_fmt(width)} {_fmt(height)}">',
        f'<rect width="{_fmt(width)}" height="{_fmt(height)}" fill="#ffffff"/>',
        f'<g fill="#ffffff" fill-rule="evenodd" stroke="rgb({BORDER_GRAY},{BORDER_GRAY},{BORDER_GRAY})" '
        f'stroke-width="{BORDER_MM}" stroke-linejoin="round">',
    ]
    for r, rings in enumerate(outlines):
        if rings:
            number = int(region_class[r]) + 1
            lines.append(
                f'<path class="c{number}" data-fill="{palette_hex[number - 1]}" d="{_path_data(rings, s, dx, dy)}"/>'
            )
    lines.append("</g>")
    ink = f"rgb({INK_GRAY},{INK_GRAY},{INK_GRAY})"
    lines.append(f'<g font-family="Helvetica, Arial, sans-serif" text-anchor="middle" fill="{ink}">')
    for spot in labels:
        x = spot.x * s + dx
        baseline = spot.y * s + dy + DIGIT_HEIGHT_EM * spot.font_mm / 2
        size = _fmt(spot.font_mm)
        lines.append(f'<text x="{_fmt(x)}" y="{_fmt(baseline)}" font-size="{size}">{escape(str(spot.number))}</text>')
    lines.append("</g>")
    lines.append("</svg>")
    return ("\n".join(lines) + "\n").encode()


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def template_png(
    outlines: Sequence[Sequence[np.ndarray]], labels: Sequence[LabelSpot], shape: tuple[int, int], layout: Layout
) -> bytes:
    """The numbered template as a picture, twice the working size so the numbers read on a screen."""
    scale = 2
    height, width = shape[0] * scale, shape[1] * scale
    canvas = np.full((height, width), 255, dtype=np.uint8)
    thickness = max(1, round(BORDER_MM / layout.mm_per_px * scale))
    polylines = [np.round(ring * scale * 16).astype(np.int32) for rings in outlines for ring in rings]
    cv2.polylines(canvas, polylines, True, BORDER_GRAY, thickness, cv2.LINE_AA, shift=4)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    fonts: dict[int, ImageFont.ImageFont | ImageFont.FreeTypeFont] = {}
    for spot in labels:
        size = max(6, round(spot.font_mm / layout.mm_per_px * scale))
        font = fonts.setdefault(size, _font(size))
        baseline = (spot.y + DIGIT_HEIGHT_EM * spot.font_mm / layout.mm_per_px / 2) * scale
        draw.text((spot.x * scale, baseline), str(spot.number), fill=INK_GRAY, font=font, anchor="ms")
    return _png(image)


def preview_png(classes: np.ndarray, palette_rgb: np.ndarray) -> bytes:
    """The finished painting: every region filled with its colour, at the working size."""
    return _png(Image.fromarray(palette_rgb[classes]))
