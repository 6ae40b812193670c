"""Drawing a segmentation: vector outlines (SVG, PDF), the numbered template and the coloured preview (PNG)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from skimage.measure import find_contours

from bot.providers.local.pbn_labels import DIGIT_HEIGHT_EM, LabelSpot

BORDER_GRAY = 120  # outlines light enough to vanish under paint
INK_GRAY = 60
BORDER_MM = 0.2
OUTLINE_SIGMA_PX = 0.7  # smoothing of each region's mask before tracing its 0.5 level line
SIMPLIFY_PX = 0.25


@dataclass(frozen=True)
class Layout:
    """Where the picture sits on the printed canvas, in mm, and the scale of working pixels."""

    canvas_mm: tuple[float, float]
    offset_mm: tuple[float, float]
    mm_per_px: float


def region_outlines(regions: np.ndarray, count: int) -> list[list[np.ndarray]]:
    """Closed outlines of each region (outer edge and holes), as (x, y) float arrays in working px with the
    picture spanning [0, W] × [0, H]. Each is the 0.5 level line of the region's lightly blurred mask, so two
    regions sharing a border trace the same curve (their masks add up to one there)."""
    height, width = regions.shape
    pad = 3
    out: list[list[np.ndarray]] = []
    for r, box in enumerate(ndimage.find_objects(regions + 1, max_label=count)):
        if box is None:
            out.append([])
            continue
        y0, x0 = box[0].start, box[1].start
        mask = np.pad((regions[box] == r).astype(np.float32), pad)
        blurred = cv2.GaussianBlur(mask, (0, 0), OUTLINE_SIGMA_PX)
        rings: list[np.ndarray] = []
        for contour in find_contours(blurred, 0.5):  # type: ignore[no-untyped-call]
            xy = np.stack([contour[:, 1] + x0 - pad + 0.5, contour[:, 0] + y0 - pad + 0.5], axis=1)
            xy = np.clip(xy, [0, 0], [width, height]).astype(np.float32)
            simple = cv2.approxPolyDP(xy.reshape(-1, 1, 2), SIMPLIFY_PX, True).reshape(-1, 2)
            if len(simple) >= 3:
                rings.append(simple)
        out.append(rings)
    return out


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
