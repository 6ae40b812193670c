"""Quality figures of a paint-by-numbers result, computed from its outputs only: the flat-filled picture, the
label boxes (from an SVG's text) and the print scale.

Used by bench/local_studio.py for every tool alike; small enough to check on tiny synthetic pictures.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.measure import label as connected_label

TINY_MM = 2.0
LABEL_MIN_MM = 1.2
LABEL_CLEAR_MM = 0.15
JAGGED_SIGMA_MM = 1.0
BOUNDARY_TOLERANCE_MM = 1.0
# Helvetica/Arial digit proportions, to turn an SVG <text> into the box its digits cover.
DIGIT_HEIGHT_EM = 0.71
DIGIT_WIDTH_EM = 0.556


@dataclass(frozen=True)
class LabelBox:
    """A number's ink box in fill pixels (x0, y0 inclusive; x1, y1 exclusive) and its text."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str


@dataclass
class Figures:
    regions: int
    colors: int
    tiny_share: float
    de_mean: float
    de_p95: float
    legible_share: float
    crossing: int
    unlabelled: int
    jaggedness: float
    boundary_f: float | None = None


def region_map(fill: np.ndarray, max_colors: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Regions of a flat-filled picture: every pixel snaps to the nearest of its most frequent colours (this
    undoes anti-aliased edges), then 4-connected runs of one colour are regions. Returns (regions, colours)."""
    flat = fill.reshape(-1, 3).astype(np.int64)
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    values, counts = np.unique(codes, return_counts=True)
    # A palette colour covers many pixels; anti-aliasing blends are rare each.
    keep = values[np.argsort(-counts)][:max_colors]
    keep = keep[counts[np.argsort(-counts)][: len(keep)] >= max(4, flat.shape[0] // 200_000)]
    palette = np.stack([(keep >> 16) & 255, (keep >> 8) & 255, keep & 255], axis=1).astype(np.float32)
    index = np.searchsorted(values, codes)
    value_colour = np.zeros(len(values), dtype=np.int32)
    for i, v in enumerate(values):
        rgb = np.array([(v >> 16) & 255, (v >> 8) & 255, v & 255], dtype=np.float32)
        value_colour[i] = int(((palette - rgb) ** 2).sum(axis=1).argmin())
    classes = value_colour[index].reshape(fill.shape[:2])
    regions = connected_label(classes + 1, background=0, connectivity=1).astype(np.int32) - 1
    return regions, classes


def _edges(regions: np.ndarray) -> np.ndarray:
    padded = np.pad(regions, 1, constant_values=-1)
    centre = padded[1:-1, 1:-1]
    return (
        (centre != padded[:-2, 1:-1])
        | (centre != padded[2:, 1:-1])
        | (centre != padded[1:-1, :-2])
        | (centre != padded[1:-1, 2:])
    )


def inscribed_diameters_mm(regions: np.ndarray, mm_per_px: float) -> np.ndarray:
    """Largest inscribed circle of each region, in mm: twice (distance to the region's edge pixels + half a px)."""
    distance = cv2.distanceTransform((~_edges(regions)).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    count = int(regions.max()) + 1
    best = np.asarray(ndimage.maximum(distance, regions, np.arange(count)), dtype=np.float64)
    return 2 * (best + 0.5) * mm_per_px


def tiny_share(regions: np.ndarray, mm_per_px: float) -> float:
    diameters = inscribed_diameters_mm(regions, mm_per_px)
    return float((diameters < TINY_MM).mean()) if len(diameters) else 0.0


def color_error(photo: np.ndarray, fill: np.ndarray, step: int = 2) -> tuple[float, float]:
    """Mean and 95th percentile CIEDE2000 between the photo and the flat fill (same size), on a pixel grid."""
    a = rgb2lab(photo[::step, ::step].astype(np.float64) / 255)
    b = rgb2lab(fill[::step, ::step].astype(np.float64) / 255)
    de = deltaE_ciede2000(a, b).ravel()
    return float(de.mean()), float(np.percentile(de, 95))


def label_figures(regions: np.ndarray, boxes: list[LabelBox], mm_per_px: float) -> tuple[float, int, int]:
    """(share of regions holding a legible whole number, labels crossing a border, regions without a number).
    Legible: digits at least 1.2 mm tall, and the box grown by 0.15 mm lies inside one region."""
    height, width = regions.shape
    count = int(regions.max()) + 1
    legible = np.zeros(count, dtype=bool)
    numbered = np.zeros(count, dtype=bool)
    crossing = 0
    clear = LABEL_CLEAR_MM / mm_per_px
    for box in boxes:
        cx = int(np.clip((box.x0 + box.x1) / 2, 0, width - 1))
        cy = int(np.clip((box.y0 + box.y1) / 2, 0, height - 1))
        home = regions[cy, cx]
        numbered[home] = True
        inner = _window(regions, box.x0, box.y0, box.x1, box.y1)
        if inner.size and (inner != home).any():
            crossing += 1
            continue
        if (box.y1 - box.y0) * mm_per_px < LABEL_MIN_MM - 1e-6 or not re.fullmatch(r"\d+", box.text):
            continue
        grown = _window(regions, box.x0 - clear, box.y0 - clear, box.x1 + clear, box.y1 + clear)
        inside = box.x0 - clear >= 0 and box.y0 - clear >= 0 and box.x1 + clear <= width and box.y1 + clear <= height
        if inside and not (grown != home).any():
            legible[home] = True
    return float(legible.mean()), crossing, int((~numbered).sum())


def _window(regions: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """The pixels whose squares the box touches."""
    height, width = regions.shape
    left, top = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    right, bottom = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
    return regions[top:bottom, left:right]


def jaggedness(classes: np.ndarray, mm_per_px: float) -> float:
    """Border length over its length after Gaussian smoothing along the border (sigma = 1 mm): 1 for smooth
    curves, higher for staircases and wiggles. Borders along the picture's edge are left out."""
    height, width = classes.shape
    sigma = JAGGED_SIGMA_MM / mm_per_px
    total = smoothed_total = 0.0
    for k in np.unique(classes):
        mask = (classes == k).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        for contour in contours:
            points = contour.reshape(-1, 2).astype(np.float64)
            if len(points) < 3:
                continue
            steps = np.linalg.norm(np.diff(points, axis=0, append=points[:1]), axis=1)
            smooth = np.stack([ndimage.gaussian_filter1d(points[:, i], sigma, mode="wrap") for i in range(2)], axis=1)
            smooth_steps = np.linalg.norm(np.diff(smooth, axis=0, append=smooth[:1]), axis=1)
            on_frame = (
                (points[:, 0] <= 0) | (points[:, 1] <= 0) | (points[:, 0] >= width - 1) | (points[:, 1] >= height - 1)
            )
            interior = ~(on_frame | np.roll(on_frame, -1))
            total += float(steps[interior].sum())
            smoothed_total += float(smooth_steps[interior].sum())
    return total / smoothed_total if smoothed_total > 0 else 1.0


def boundary_f(regions: np.ndarray, truth: np.ndarray, mm_per_px: float) -> float:
    """F-score of the region borders against the true ones, a border pixel matching within 1 mm."""
    if truth.shape != regions.shape:
        truth = cv2.resize(truth.astype(np.float32), regions.shape[::-1], interpolation=cv2.INTER_NEAREST)
        truth = truth.astype(np.int32)
    found, true = _inner_edges(regions), _inner_edges(truth)
    tolerance = BOUNDARY_TOLERANCE_MM / mm_per_px
    to_true = cv2.distanceTransform((~true).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    to_found = cv2.distanceTransform((~found).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    if not found.any() or not true.any():
        return 1.0 if found.any() == true.any() else 0.0
    precision = float((to_true[found] <= tolerance).mean())
    recall = float((to_found[true] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _inner_edges(regions: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour is in another region (the picture's frame is no border)."""
    edge = np.zeros(regions.shape, dtype=bool)
    edge[:, :-1] |= regions[:, :-1] != regions[:, 1:]
    edge[:-1, :] |= regions[:-1, :] != regions[1:, :]
    return edge


def svg_label_boxes(svg: bytes, px_per_unit: float, offset: tuple[float, float] = (0.0, 0.0)) -> list[LabelBox]:
    """Label boxes from an SVG's <text> elements, in fill pixels: px = (root user unit - offset) * px_per_unit.
    Follows translate() of groups, nested <svg> viewports (x, y, width, viewBox), font-size inheritance,
    text-anchor and dominant-baseline (middle/central: y is the digits' centre, else their baseline)."""
    root = ET.fromstring(svg)  # noqa: S314 - our own and the anchors' outputs, read on the bench machine
    boxes: list[LabelBox] = []

    def walk(node: ET.Element, frame: tuple[float, float, float], size: float, anchor: str, base: str) -> None:
        dx, dy, scale = frame  # root units = local units * scale + (dx, dy)
        match = re.search(r"translate\(\s*([-\d.e]+)[\s,]*([-\d.e]*)\s*\)", node.get("transform", ""))
        if match:
            dx += float(match.group(1)) * scale
            dy += float(match.group(2) or 0) * scale
        if node.tag.endswith("svg") and node is not root:
            dx += float(node.get("x", "0")) * scale
            dy += float(node.get("y", "0")) * scale
            view = [float(v) for v in re.split(r"[\s,]+", node.get("viewBox", "").strip()) if v]
            width = node.get("width")
            if len(view) == 4 and width and view[2] > 0:
                inner = float(re.sub(r"[^\d.e-]", "", width)) / view[2]
                dx -= view[0] * inner * scale
                dy -= view[1] * inner * scale
                scale *= inner
        size = _font_size(node, size)
        anchor = node.get("text-anchor") or _style(node, "text-anchor") or anchor
        base = node.get("dominant-baseline") or _style(node, "dominant-baseline") or base
        if node.tag.endswith("text") and "".join(node.itertext()).strip():
            text = "".join(node.itertext()).strip()
            x = float(node.get("x", "0").split()[0]) * scale + dx
            y = float(node.get("y", "0").split()[0]) * scale + dy
            real = size * scale
            width_ = len(text) * DIGIT_WIDTH_EM * real
            height_ = DIGIT_HEIGHT_EM * real
            left = x - width_ / 2 if anchor == "middle" else x - width_ if anchor == "end" else x
            top = y - height_ / 2 if base in ("middle", "central") else y - height_
            boxes.append(
                LabelBox(
                    (left - offset[0]) * px_per_unit,
                    (top - offset[1]) * px_per_unit,
                    (left + width_ - offset[0]) * px_per_unit,
                    (top + height_ - offset[1]) * px_per_unit,
                    text,
                )
            )
        for child in node:
            walk(child, (dx, dy, scale), size, anchor, base)

    walk(root, (0.0, 0.0, 1.0), 16.0, "start", "auto")
    return boxes


def _style(node: ET.Element, key: str) -> str | None:
    match = re.search(rf"{key}\s*:\s*([^;]+)", node.get("style", ""))
    return match.group(1).strip() if match else None


def _font_size(node: ET.Element, inherited: float) -> float:
    raw = node.get("font-size") or _style(node, "font-size")
    if not raw:
        return inherited
    match = re.match(r"[-\d.e]+", raw)
    return float(match.group(0)) if match else inherited


def measure(
    photo: np.ndarray,
    fill: np.ndarray,
    boxes: list[LabelBox],
    mm_per_px: float,
    truth: np.ndarray | None = None,
) -> Figures:
    """Every figure of one result. `photo` is resized to the fill's size here."""
    if photo.shape[:2] != fill.shape[:2]:
        photo = cv2.resize(photo, fill.shape[1::-1], interpolation=cv2.INTER_AREA)
    regions, classes = region_map(fill)
    de_mean, de_p95 = color_error(photo, fill)
    legible, crossing, unlabelled = label_figures(regions, boxes, mm_per_px)
    return Figures(
        regions=int(regions.max()) + 1,
        colors=len(np.unique(classes)),
        tiny_share=tiny_share(regions, mm_per_px),
        de_mean=de_mean,
        de_p95=de_p95,
        legible_share=legible,
        crossing=crossing,
        unlabelled=unlabelled,
        jaggedness=jaggedness(classes, mm_per_px),
        boundary_f=None if truth is None else boundary_f(regions, truth, mm_per_px),
    )
