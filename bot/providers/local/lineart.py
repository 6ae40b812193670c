"""Coloring pages from photos: clean black outlines on white, around closed areas a child can colour.

Outlines are the borders of a colour segmentation (closed by construction): the photo is smoothed with
edge-preserving filters, quantised to a few colours in CIELAB, cleaned with a majority filter, split into
connected regions, and regions too small to colour are merged into a neighbour. Their borders are drawn at the
page's resolution as smooth centre lines of one even width. The "detailed" style adds strong inner strokes
(long ones only, so the page gets no hatching or loose ends). A frame closes regions cut by the picture's edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, ValidationError
from scipy import ndimage
from skimage.morphology import skeletonize

from .art_files import encode_png, fit_side
from .common import Output, Rendered, RenderError, open_capped, to_rgb_array
from .page_pdf import Paper, image_page_pdf

PAGE_SIDE = 2000  # long side of the page image: ~180 dpi across an A4 sheet
SEG_SIDE = 640  # long side at which the colours are segmented


class ColoringOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    style: Literal["detailed", "simple", "bold"] = "simple"
    paper: Paper = "a4"


@dataclass(frozen=True)
class Style:
    colours: int  # k-means palette size: more colours, more regions
    min_region: float  # regions smaller than this fraction of the picture are merged into a neighbour
    line_px: int  # stroke width on the page image
    strokes: bool  # add strong inner edges
    smooth_passes: int


STYLES: dict[str, Style] = {
    "detailed": Style(colours=12, min_region=0.0008, line_px=4, strokes=True, smooth_passes=2),
    "simple": Style(colours=8, min_region=0.002, line_px=6, strokes=False, smooth_passes=3),
    "bold": Style(colours=6, min_region=0.006, line_px=10, strokes=False, smooth_passes=4),
}


def _smooth(rgb: np.ndarray, passes: int) -> np.ndarray:
    """Edge-preserving smoothing: texture and noise go, object borders stay."""
    out = cv2.medianBlur(rgb, 3)
    for _ in range(passes):
        out = cv2.bilateralFilter(out, 9, 35, 5)
    return out


def _quantise(lab: np.ndarray, colours: int) -> np.ndarray:
    """Label of the nearest of `colours` k-means centres, per pixel (fitted on a sample, deterministic)."""
    pixels = lab.reshape(-1, 3).astype(np.float32)
    rng = np.random.default_rng(0)
    sample = pixels[rng.choice(len(pixels), size=min(len(pixels), 20_000), replace=False)]
    colours = max(1, min(colours, len(np.unique(sample, axis=0))))
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    best = np.zeros((len(sample), 1), np.int32)
    _, _, centres = cv2.kmeans(sample, colours, best, criteria, 2, cv2.KMEANS_PP_CENTERS)
    distances = ((pixels[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    nearest: np.ndarray = distances.argmin(axis=1).reshape(lab.shape[:2]).astype(np.int32)
    return nearest


def _majority(labels: np.ndarray, count: int, size: int) -> np.ndarray:
    """Each pixel takes the most frequent label around it: removes speckle and smooths borders."""
    votes = np.stack([cv2.boxFilter((labels == k).astype(np.float32), -1, (size, size)) for k in range(count)], axis=0)
    winner: np.ndarray = votes.argmax(axis=0).astype(np.int32)
    return winner


def _regions(labels: np.ndarray, count: int) -> np.ndarray:
    """Connected regions of equal colour label, numbered from 1."""
    regions = np.zeros(labels.shape, np.int32)
    next_id = 1
    for k in range(count):
        n, comp = cv2.connectedComponents((labels == k).astype(np.uint8), connectivity=4)
        if n > 1:
            mask = comp > 0
            regions[mask] = comp[mask] + next_id - 1
            next_id += n - 1
    return regions


def _merge_small(regions: np.ndarray, min_pixels: int) -> np.ndarray:
    """Regions under `min_pixels` are given to the nearest large region (pixel by pixel, by distance)."""
    sizes = np.bincount(regions.ravel())
    small = sizes[regions] < min_pixels
    if not small.any() or small.all():
        return regions
    _, (iy, ix) = ndimage.distance_transform_edt(small, return_indices=True)
    return np.asarray(regions[iy, ix], dtype=np.int32)


def _skeleton(mask: np.ndarray) -> np.ndarray:
    return np.asarray(skeletonize(mask), dtype=bool)  # type: ignore[no-untyped-call]


def _borders(regions: np.ndarray) -> np.ndarray:
    """1 where a pixel's right or lower neighbour belongs to another region."""
    edge = np.zeros(regions.shape, np.uint8)
    edge[:, :-1] |= (regions[:, :-1] != regions[:, 1:]).astype(np.uint8)
    edge[:-1, :] |= (regions[:-1, :] != regions[1:, :]).astype(np.uint8)
    return edge


def _centre_lines(border: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Smooth one-pixel centre lines at the page's size from a coarse border mask."""
    width, height = size
    scale = width / border.shape[1]
    big = cv2.resize(border.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    big = cv2.GaussianBlur(big, (0, 0), max(1.0, scale * 0.7))
    band = big > 0.12
    return _skeleton(band)


def _strokes(rgb: np.ndarray, min_length: int) -> np.ndarray:
    """Strong edges of the smoothed page-size picture, long connected ones only."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    grey = cv2.GaussianBlur(grey, (0, 0), 2.0)
    edges = cv2.Canny(grey, 40, 100, L2gradient=True)
    n, comp, stats, _ = cv2.connectedComponentsWithStats((edges > 0).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_length
    return np.asarray(keep[comp], dtype=bool)


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
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)
    labels = _quantise(lab, style.colours)
    count = int(labels.max()) + 1
    labels = _majority(labels, count, 5)
    regions = _regions(labels, count)
    regions = _merge_small(regions, max(4, round(style.min_region * regions.size)))
    border = _borders(regions)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = 1  # the frame closes edge regions

    lines = _centre_lines(border, size)
    if style.strokes:
        page_smooth = cv2.bilateralFilter(page_rgb, 9, 40, 6)
        lines |= _strokes(page_smooth, min_length=PAGE_SIDE // 25)
        lines = _skeleton(_ink(lines, 3))
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
    png = encode_png(page, compression=9)
    pdf = image_page_pdf(Image.fromarray(page).convert("1"), options.paper, title="Coloring page")
    regions = cv2.connectedComponents((~ink).astype(np.uint8), connectivity=4)[0] - 1
    return Rendered(
        files=[
            Output(filename="coloring-page.png", data=png, label="page"),
            Output(filename="coloring-page.pdf", data=pdf, kind="file", label="pdf", send=False),
        ],
        meta={"style": options.style, "paper": options.paper, "areas": regions, "size": f"{width}×{height}"},
    )
