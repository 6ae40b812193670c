"""Paint-by-numbers segmentation: a photo becomes a few hundred flat regions, each big enough to paint and to
hold its number.

Pipeline (all at the working size): edge-preserving smoothing, k-means in CIELAB, majority smoothing of the
colour map (smooth borders, no speckle), then repeated merging of every region that is too small (largest
inscribed circle) or cannot hold its label, into its most similar neighbour (touching small regions that
are together big enough unite instead, in one paint); finally each colour is the
median of the photo's pixels it covers (colour fidelity) and colours are numbered from light to dark.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

try:  # skimage's labelling core alone: skimage.measure's package imports SciPy, half a second of every job
    from skimage.measure._ccomp import label_cython as connected_label
except ImportError:  # pragma: no cover - a scikit-image that moved it
    from skimage.measure import label as connected_label

from bot.providers.local.pbn_colors import image_to_lab, lab_to_srgb
from bot.providers.local.pbn_labels import LabelGeometry, fit_masks

MAX_MERGE_ROUNDS = 14
KMEANS_SAMPLE = 40_000
KMEANS_ATTEMPTS = 2
DUPLICATE_DELTA_E = 2.5  # k-means centres closer than this are one paint
SIMILAR_DELTA_E = 6.0  # neighbouring regions closer in colour than this are merged
USE_OWN_COLOUR = True
USE_MEDIAN = True
UNITE_ROUNDS = 2  # merge rounds in which clusters of small regions may unite (later ones rarely do)
UNITE_MIN_FACTOR = 1.0  # a united cluster must be this many times the smallest region's width
# Edge-preserving smoothing before k-means, one pass per value (sigmaColor, in 8-bit RGB): a gentle pass
# takes the noise off edges, a stronger one then flattens fur, grain and sensor noise into few paints.
BILATERAL_COLOURS = (22, 30)
SUBSTANTIAL_BORDER = 0.0  # a bad region only joins neighbours sharing at least this share of its longest border


@dataclass(frozen=True)
class SegmentParams:
    colors: int
    mm_per_px: float
    min_diameter_mm: float  # smallest region: diameter of its largest inscribed circle
    smooth_mm: float  # sigma of the majority smoothing of the colour map
    geometry: LabelGeometry


@dataclass
class Segmentation:
    classes: np.ndarray  # H×W int32: colour index per pixel, 0..N-1, lightest first
    regions: np.ndarray  # H×W int32: region id per pixel, 0..R-1
    region_class: np.ndarray  # R: colour index of each region
    palette_rgb: np.ndarray  # N×3 uint8
    palette_lab: np.ndarray  # N×3 float32

    @property
    def region_count(self) -> int:
        return len(self.region_class)


def smooth_photo(rgb: np.ndarray, mm_per_px: float) -> np.ndarray:
    """Edge-preserving smoothing: flattens texture and noise that would otherwise split regions, keeps edges."""
    sigma_space = max(1.5, 0.6 / mm_per_px)
    out = rgb
    for colour in BILATERAL_COLOURS:
        out = cv2.bilateralFilter(out, d=-1, sigmaColor=colour, sigmaSpace=sigma_space)
    return out


def kmeans_palette(lab: np.ndarray, colors: int, seed: int = 7) -> np.ndarray:
    """Palette centres in CIELAB from a sample of the pixels; near-duplicates are merged (a flat picture gets
    one colour, not sixteen copies of it)."""
    pixels = lab.reshape(-1, 3)
    rng = np.random.default_rng(seed)
    sample = pixels[rng.choice(len(pixels), size=min(len(pixels), KMEANS_SAMPLE), replace=False)]
    unique = np.unique(np.round(sample, 1), axis=0)
    if len(unique) <= colors:
        centres = unique.astype(np.float32)
    else:
        cv2.setRNGSeed(seed)
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.2)
        _, _, centres = cv2.kmeans(  # type: ignore[call-overload]
            sample.astype(np.float32), colors, None, criteria, KMEANS_ATTEMPTS, cv2.KMEANS_PP_CENTERS
        )
    kept: list[np.ndarray] = []
    for centre in centres:
        if all(np.linalg.norm(centre - other) >= DUPLICATE_DELTA_E for other in kept):
            kept.append(centre)
    return np.array(kept, dtype=np.float32)


def assign(lab: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Nearest centre per pixel (squared CIELAB distance as |c|² - 2 x·c, a matrix product), in chunks so
    a 100-colour palette never needs an H×W×100 array."""
    flat = lab.reshape(-1, 3)
    index = np.empty(len(flat), dtype=np.int32)
    norms = (centres**2).sum(axis=1)
    step = max(1, 4_000_000 // max(1, len(centres)))
    for start in range(0, len(flat), step):
        chunk = flat[start : start + step]
        index[start : start + step] = np.argmin(norms - 2 * (chunk @ centres.T), axis=1)
    return index.reshape(lab.shape[:2])


def majority_smooth(classes: np.ndarray, sigma_px: float) -> np.ndarray:
    """Each pixel takes the colour with the most Gaussian-weighted votes around it: rounds jagged borders
    and removes speckle; two-colour borders become the smooth 0.5 level line."""
    if sigma_px <= 0.3:
        return classes
    # 8-bit votes: OpenCV blurs uint8 several times faster than float, and 1/255 is plenty to pick a winner.
    best = np.full(classes.shape, -1, dtype=np.int16)
    out = classes.copy()
    for k in np.unique(classes):
        votes = cv2.GaussianBlur((classes == k).view(np.uint8) * np.uint8(255), (0, 0), sigma_px)
        np.copyto(out, k, where=votes > best)
        np.maximum(best, votes, out=best)
    return out


def label_regions(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Regions: 4-connected runs of one colour. Returns the region map (0..R-1) and each region's colour."""
    regions = connected_label(classes + 1, background=0, connectivity=1).astype(np.int32) - 1
    count = int(regions.max()) + 1
    region_class = np.zeros(count, dtype=np.int32)
    region_class[regions.ravel()] = classes.ravel()
    return regions, region_class


def boundary_mask(regions: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour in another region, the picture's edge counting as another region."""
    padded = np.pad(regions, 1, constant_values=-1)
    centre = padded[1:-1, 1:-1]
    edge: np.ndarray = (
        (centre != padded[:-2, 1:-1])
        | (centre != padded[2:, 1:-1])
        | (centre != padded[1:-1, :-2])
        | (centre != padded[1:-1, 2:])
    )
    return edge


def inscribed_diameters(regions: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per region: the diameter in px of its largest inscribed circle (distance to its own edge + half a
    pixel, doubled) and the distance map it came from."""
    edge = boundary_mask(regions)
    distance: np.ndarray = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    best = np.zeros(count, dtype=np.float32)
    np.maximum.at(best, regions.ravel(), distance.ravel())
    return 2 * (best + 0.5), distance


def adjacency(regions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbouring region pairs (a, b) in both directions and the length of border they share (px)."""
    a = np.concatenate([regions[:, :-1].ravel(), regions[:-1, :].ravel()])
    b = np.concatenate([regions[:, 1:].ravel(), regions[1:, :].ravel()])
    differ = a != b
    a, b = a[differ].astype(np.int64), b[differ].astype(np.int64)
    count = int(regions.max()) + 1
    codes, shared = np.unique(np.concatenate([a * count + b, b * count + a]), return_counts=True)
    return codes // count, codes % count, shared


def merge_targets(
    bad: np.ndarray,
    area: np.ndarray,
    region_class: np.ndarray,
    centres: np.ndarray,
    regions: np.ndarray,
    own: np.ndarray | None = None,
) -> np.ndarray:
    """The new colour of every region (unchanged for good ones): a bad region takes the colour of its most
    similar neighbour among those sharing a good part of its border. It only moves into a good neighbour
    or a bigger one, so merges never go round in circles."""
    new_class = region_class.copy()
    first, second, shared = adjacency(regions)
    order = np.argsort(first, kind="stable")
    first, second, shared = first[order], second[order], shared[order]
    starts = np.searchsorted(first, np.arange(len(region_class)))
    ends = np.searchsorted(first, np.arange(len(region_class)), side="right")
    for r in np.flatnonzero(bad):
        s, e = starts[r], ends[r]
        if s == e:
            continue
        neighbours, borders = second[s:e], shared[s:e]
        allowed = ~bad[neighbours] | (area[neighbours] > area[r]) | ((area[neighbours] == area[r]) & (neighbours > r))
        if not allowed.any():
            continue
        neighbours, borders = neighbours[allowed], borders[allowed]
        substantial = borders >= SUBSTANTIAL_BORDER * borders.max()
        neighbours = neighbours[substantial]
        diff = centres[region_class[neighbours]] - (centres[region_class[r]] if own is None else own[r])
        new_class[r] = region_class[neighbours[int(np.argmin((diff**2).sum(axis=1)))]]
    return new_class


def unite_clusters(
    new_class: np.ndarray,
    bad: np.ndarray,
    area: np.ndarray,
    region_class: np.ndarray,
    centres: np.ndarray,
    regions: np.ndarray,
    own: np.ndarray,
    params: SegmentParams,
    digits: np.ndarray,
    min_diameter_px: float,
) -> None:
    """Touching regions that are each too small (a galaxy's core and rings, an eye's parts) become one region
    in one paint when together they are big enough and that paint is closer to them than their neighbours'."""
    bad_pixels = bad[regions]
    _, clusters = cv2.connectedComponents(bad_pixels.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    n_clusters = int(clusters.max())
    if n_clusters == 0:
        return
    count = len(region_class)
    joint = np.where(bad_pixels, clusters - 1 + count, regions)
    total = count + n_clusters
    flat_clusters = clusters.ravel()
    # The cluster of each bad region, and how many bad regions each cluster holds.
    cluster_of = np.zeros(count, dtype=np.int64)
    cluster_of[regions.ravel()[bad_pixels.ravel()]] = flat_clusters[bad_pixels.ravel()] - 1
    members = np.bincount(cluster_of[bad], minlength=n_clusters)
    weight = area[bad].astype(np.float64)
    sums = np.stack([np.bincount(cluster_of[bad], own[bad, c] * weight, minlength=n_clusters) for c in range(3)], 1)
    mean = sums / np.maximum(np.bincount(cluster_of[bad], weight, minlength=n_clusters), 1)[:, None]
    paint = ((mean[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    diameters, _ = inscribed_diameters(joint, total)
    holds = np.zeros(total, dtype=bool)
    for n_digits, fit in fit_masks(joint, params.geometry, 0, sorted(set(digits.tolist()))).items():
        inside = np.zeros(total, dtype=bool)
        inside[joint[fit]] = True
        holds[count:] |= inside[count:] & (digits[paint] == n_digits)
    viable = (members >= 2) & holds[count:] & (diameters[count:] >= UNITE_MIN_FACTOR * min_diameter_px)
    if not viable.any():
        return
    rows = np.flatnonzero(bad)
    c_of = cluster_of[rows]
    absorbed = np.linalg.norm(own[rows] - centres[new_class[rows]], axis=1) * area[rows]
    united = np.linalg.norm(own[rows] - centres[paint[c_of]], axis=1) * area[rows]
    cost_absorbed = np.bincount(c_of, absorbed, minlength=n_clusters)
    cost_united = np.bincount(c_of, united, minlength=n_clusters)
    chosen = viable & (cost_united < cost_absorbed)
    take = chosen[c_of]
    new_class[rows[take]] = paint[c_of[take]]


def merge_small(
    classes: np.ndarray,
    centres: np.ndarray,
    params: SegmentParams,
    digits: np.ndarray,
    lab: np.ndarray | None = None,
    unite_rounds: int = 0,
) -> np.ndarray:
    """Merge regions that are too small or cannot hold their number until none is left (or rounds run out)."""
    min_diameter_px = params.min_diameter_mm / params.mm_per_px
    for round_ in range(MAX_MERGE_ROUNDS):
        regions, region_class = label_regions(classes)
        count = len(region_class)
        diameters, _ = inscribed_diameters(regions, count)
        fits = np.zeros(count, dtype=bool)
        for n_digits, fit in fit_masks(regions, params.geometry, 0, sorted(set(digits.tolist()))).items():
            holds = np.zeros(count, dtype=bool)
            holds[regions[fit]] = True
            fits |= holds & (digits[region_class] == n_digits)
        bad = (diameters < min_diameter_px) | ~fits
        if not bad.any() or count == 1:
            break
        area = np.bincount(regions.ravel(), minlength=count)
        own = None
        if lab is not None and USE_OWN_COLOUR:  # a region's own mean colour picks the paint it joins
            flat = regions.ravel()
            own = np.stack([np.bincount(flat, lab[:, c], minlength=count) for c in range(3)], axis=1)
            own = (own / np.maximum(area, 1)[:, None]).astype(np.float32)
        new_class = merge_targets(bad, area, region_class, centres, regions, own)
        if own is not None and round_ < unite_rounds:
            unite_clusters(new_class, bad, area, region_class, centres, regions, own, params, digits, min_diameter_px)
        if np.array_equal(new_class, region_class):
            break
        classes = new_class[regions]
    return classes


def class_means(classes: np.ndarray, lab: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Mean CIELAB of the pixels (rows of `lab`) of each colour; a colour without pixels keeps its centre."""
    flat = classes.ravel()
    counts = np.bincount(flat, minlength=len(centres))
    sums = np.stack([np.bincount(flat, lab[:, c], minlength=len(centres)) for c in range(3)], axis=1)
    out = centres.astype(np.float64)
    has = counts > 0
    out[has] = sums[has] / counts[has, None]
    return out.astype(np.float32)


def class_medians(classes: np.ndarray, lab: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Per-channel median CIELAB of each colour's pixels: closer than the mean to most of them when a few
    outliers (specks, highlights) pull the mean away, which is what the eye (and ΔE) judges."""
    flat = classes.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(len(centres) + 1))
    out = centres.astype(np.float32).copy()
    for k in range(len(centres)):
        rows = order[bounds[k] : bounds[k + 1]]
        if len(rows):
            out[k] = np.median(lab[rows], axis=0)
    return out


def refine_colours(classes: np.ndarray, lab: np.ndarray, centres: np.ndarray, rounds: int = 2) -> np.ndarray:
    """k-means at the level of regions: merges gave regions their neighbours' colours, so each region takes
    the palette colour nearest to its own mean and each colour becomes the mean of its regions. Shapes never
    change; regions that end up beside one of their own colour just join it."""
    for _ in range(rounds):
        centres = class_means(classes, lab, centres)
        regions, _ = label_regions(classes)
        flat = regions.ravel()
        counts = np.bincount(flat)
        means = np.stack([np.bincount(flat, lab[:, c]) for c in range(3)], axis=1) / counts[:, None]
        distance = ((means[:, None, :] - centres[None, :, :].astype(np.float64)) ** 2).sum(axis=2)
        classes = distance.argmin(axis=1).astype(np.int32)[regions]
    return classes


def merge_similar(classes: np.ndarray, centres: np.ndarray, threshold: float) -> np.ndarray:
    """Neighbouring regions whose colours are closer than `threshold` (ΔE) are one region: the smaller takes
    the larger's colour (a shading gradient is not worth a border)."""
    regions, region_class = label_regions(classes)
    area = np.bincount(regions.ravel())
    first, second, _ = adjacency(regions)
    delta = np.linalg.norm(centres[region_class[first]] - centres[region_class[second]], axis=1)
    bigger = (area[first] < area[second]) | ((area[first] == area[second]) & (first < second))
    keep = (delta < threshold) & bigger
    first, second, delta = first[keep], second[keep], delta[keep]
    order = np.argsort(delta, kind="stable")[::-1]  # the most similar neighbour is written last and wins
    target = np.full(len(region_class), -1, dtype=np.int64)
    target[first[order]] = second[order]
    moving = target >= 0
    moving &= ~moving[np.where(moving, target, 0)] | ~moving  # never into a region that moves itself
    new_class = region_class.copy()
    new_class[moving] = region_class[target[moving]]
    merged: np.ndarray = new_class[regions]
    return merged


def segment(rgb: np.ndarray, params: SegmentParams) -> Segmentation:
    """The whole segmentation of an RGB uint8 picture at its working size."""
    smoothed = smooth_photo(rgb, params.mm_per_px)
    lab = image_to_lab(smoothed)
    centres = kmeans_palette(lab, params.colors)
    # Number colours light to dark now, so a label's digit count is known while merging.
    centres = centres[np.argsort(-centres[:, 0], kind="stable")]
    classes = assign(lab, centres)
    classes = majority_smooth(classes, params.smooth_mm / params.mm_per_px)
    digits = np.array([len(str(k + 1)) for k in range(len(centres))])
    photo_lab = image_to_lab(rgb).reshape(-1, 3)
    classes = merge_small(classes, centres, params, digits, photo_lab, UNITE_ROUNDS)
    # A second, light smoothing removes the notches merges leave, then merging again cleans what it made.
    classes = majority_smooth(classes, 0.5 * params.smooth_mm / params.mm_per_px)
    classes = merge_small(classes, centres, params, digits, photo_lab)
    classes = refine_colours(classes, photo_lab, centres)
    centres = class_means(classes, photo_lab, centres)
    classes = merge_similar(classes, centres, SIMILAR_DELTA_E)
    classes = merge_small(classes, centres, params, digits, photo_lab)  # a region whose number grew a digit
    # Colours that lost all their pixels go; each remaining one becomes the mean of the photo under it.
    used = np.unique(classes)
    remap = np.zeros(len(centres), dtype=np.int32)
    remap[used] = np.arange(len(used))
    classes = remap[classes]
    palette_lab = (
        class_medians(classes, photo_lab, centres[used])
        if USE_MEDIAN
        else class_means(classes, photo_lab, centres[used])
    )
    regions, region_class = label_regions(classes)
    return Segmentation(classes, regions, region_class, lab_to_srgb(palette_lab), palette_lab)
