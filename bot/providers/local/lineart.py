"""Coloring pages from photos: clean black outlines on white, around closed areas a child can colour.

The photo is smoothed with edge-preserving filters and segmented (see segment.py: watershed regions merged
until the remaining borders are visible edges of the photo); those borders are closed by construction. The
region map is enlarged to the page with smooth borders, its borders are pruned of spurs and inked at one even
width per style, and what is left too small to colour or too small to see (specks) is cleaned up. A frame
closes the regions cut by the picture's edge.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, ValidationError
from scipy import ndimage

from .art_files import fit_side
from .common import Output, Rendered, RenderError, open_capped, to_rgb_array
from .page_pdf import Paper, image_page_pdf
from .segment import MergeRules, gradient, merge_regions, oversegment

PAGE_SIDE = 2000  # long side of the page image: ~180 dpi across an A4 sheet
SEG_SIDE = 800  # long side at which the colours are segmented


class ColoringOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    style: Literal["detailed", "simple", "bold"] = "simple"
    paper: Paper = "a4"


@dataclass(frozen=True)
class Style:
    threshold: float  # borders weaker than this (gradient + colour difference) are merged away
    min_region: float  # regions smaller than this fraction of the picture are merged into a neighbour
    line_px: int  # stroke width on the page image
    smooth_passes: int


STYLES: dict[str, Style] = {
    "detailed": Style(threshold=11.0, min_region=0.0012, line_px=4, smooth_passes=2),
    "simple": Style(threshold=15.0, min_region=0.002, line_px=6, smooth_passes=3),
    "bold": Style(threshold=24.0, min_region=0.006, line_px=10, smooth_passes=4),
}
LAB_WEIGHTS = (0.6, 1.0, 1.0)  # L, a, b
MAX_AREA = 0.15  # share of the picture: larger spaces are split along their most visible lines


def _smooth(rgb: np.ndarray, passes: int) -> np.ndarray:
    """Edge-preserving smoothing: texture and noise go, object borders stay."""
    out = cv2.medianBlur(rgb, 3)
    for _ in range(passes):
        out = cv2.bilateralFilter(out, 9, 35, 5)
    return out


def _borders(regions: np.ndarray) -> np.ndarray:
    """1 where a pixel's right or lower neighbour belongs to another region."""
    edge = np.zeros(regions.shape, np.uint8)
    edge[:, :-1] |= (regions[:, :-1] != regions[:, 1:]).astype(np.uint8)
    edge[:-1, :] |= (regions[:-1, :] != regions[1:, :]).astype(np.uint8)
    return edge


def _smooth_labels(labels: np.ndarray, size: tuple[int, int], sigma: float) -> np.ndarray:
    """The region map enlarged to the page's size with smooth borders: each region's mask is enlarged and
    blurred (within its bounding box) and every pixel goes to the region with the strongest blurred mask.
    Narrow slivers lose to their neighbours, so they vanish instead of becoming ink blots."""
    width, height = size
    scale_x, scale_y = width / labels.shape[1], height / labels.shape[0]
    pad = int(np.ceil(3 * sigma / min(scale_x, scale_y))) + 1
    best = np.zeros((height, width), np.float32)
    owner = np.zeros((height, width), np.int32)
    for index, box in enumerate(ndimage.find_objects(labels + 1)):
        if box is None:
            continue
        y0, y1 = max(0, box[0].start - pad), min(labels.shape[0], box[0].stop + pad)
        x0, x1 = max(0, box[1].start - pad), min(labels.shape[1], box[1].stop + pad)
        py0, py1 = round(y0 * scale_y), round(y1 * scale_y)
        px0, px1 = round(x0 * scale_x), round(x1 * scale_x)
        if py1 <= py0 or px1 <= px0:
            continue
        mask = (labels[y0:y1, x0:x1] == index).astype(np.float32)
        big = cv2.resize(mask, (px1 - px0, py1 - py0), interpolation=cv2.INTER_LINEAR)
        big = cv2.GaussianBlur(big, (0, 0), sigma)
        view_best = best[py0:py1, px0:px1]
        wins = big > view_best
        view_best[wins] = big[wins]
        owner[py0:py1, px0:px1][wins] = index
    return owner


def _prune(lines: np.ndarray, length: int) -> np.ndarray:
    """Remove dangling ends of a one-pixel skeleton `length` pixels deep: spurs disappear, closed loops stay."""
    skeleton = lines.astype(np.uint8)
    kernel = np.ones((3, 3), np.float32)
    for _ in range(length):
        neighbours = cv2.filter2D(skeleton, -1, kernel, borderType=cv2.BORDER_CONSTANT) - skeleton
        ends = (skeleton == 1) & (neighbours <= 1)
        if not ends.any():
            break
        skeleton[ends] = 0
    return skeleton.astype(bool)


def _ink(lines: np.ndarray, width_px: int) -> np.ndarray:
    """Draw centre lines at an even width (a disc stamped along them)."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width_px, width_px))
    return cv2.dilate(lines.astype(np.uint8), disc) > 0


def _clean(ink: np.ndarray, min_white: int, min_black: int) -> np.ndarray:
    """Fill white slivers too small to colour, and drop black specks."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats((~ink).astype(np.uint8), connectivity=4)
    tiny = np.zeros(n, bool)
    tiny[1:] = stats[1:, cv2.CC_STAT_AREA] < min_white
    ink = ink | tiny[comp]
    n, comp, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    speck = np.zeros(n, bool)
    speck[1:] = stats[1:, cv2.CC_STAT_AREA] < min_black
    return np.asarray(ink & ~speck[comp], dtype=bool)


def line_art(rgb: np.ndarray, style: Style) -> np.ndarray:
    """Boolean ink mask (True = black) at the page's size for an RGB picture."""
    height, width = rgb.shape[:2]
    scale = PAGE_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    page_rgb = cv2.resize(rgb, size, interpolation=interpolation)

    small = _smooth(fit_side(page_rgb, SEG_SIDE), style.smooth_passes)
    # Lightness counts less than hue: shading (folds, shadows) should not cut areas as much as colour changes.
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32) * np.array(LAB_WEIGHTS, np.float32)
    grad = gradient(lab)
    seeds = oversegment(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), grad, cell=10)
    page_px_per_seg_px = size[0] / small.shape[1]
    rules = MergeRules(
        threshold=style.threshold,
        min_area=max(4, round(style.min_region * seeds.size)),
        min_width=3.0 * style.line_px / page_px_per_seg_px,
        max_area=round(MAX_AREA * seeds.size),
    )
    regions = merge_regions(seeds, lab, grad, rules)
    smooth_regions = _smooth_labels(regions, size, sigma=style.line_px * 1.6 + 1.5)
    lines = _borders(smooth_regions).astype(bool)
    lines[0, :] = lines[-1, :] = lines[:, 0] = lines[:, -1] = True  # the frame closes edge regions
    lines = _prune(lines, style.line_px * 3)
    ink = _ink(lines, style.line_px)
    return _clean(ink, min_white=(style.line_px * 4) ** 2, min_black=(style.line_px * 6) ** 2)


def render_coloring(data: bytes, params: dict[str, Any]) -> Rendered:
    cv2.setNumThreads(1)
    try:
        options = ColoringOptions.model_validate(params)
    except ValidationError as exc:
        raise RenderError("style must be detailed, simple or bold, and paper a4 or letter") from exc
    image = open_capped(data, work_side=PAGE_SIDE)
    rgb = to_rgb_array(image)
    ink = line_art(np.ascontiguousarray(rgb), STYLES[options.style])
    page = np.where(ink, 0, 255).astype(np.uint8)
    height, width = page.shape
    bilevel = Image.fromarray(page).convert("1")  # 1-bit PNG: an eighth of the data to compress
    buffer = io.BytesIO()
    bilevel.save(buffer, "PNG")
    png = buffer.getvalue()
    pdf = image_page_pdf(bilevel, options.paper, title="Coloring page")
    regions = cv2.connectedComponents((~ink).astype(np.uint8), connectivity=4)[0] - 1
    return Rendered(
        files=[
            Output(filename="coloring-page.png", data=png, label="page"),
            Output(filename="coloring-page.pdf", data=pdf, kind="file", label="pdf", send=False),
        ],
        meta={"style": options.style, "paper": options.paper, "areas": regions, "size": f"{width}×{height}"},
    )
