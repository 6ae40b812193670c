"""Segmentation for coloring pages: many small watershed regions on the colour gradient, merged greedily
(cheapest border first) until what is left are areas that differ: their borders follow the photo's edges,
and smooth gradients (sky, skin, walls) do not leave bands behind as colour quantisation does.

A border's cost is its mean gradient (how visible the edge is in the photo) plus half the colour difference
of the two areas' means. Tiny or thin areas are merged whatever the cost (a child cannot colour them), and
no merge may make an area larger than a share of the picture, so large spaces are split along their most
visible lines.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

# Borders cheaper than this share of the threshold are invisible (a flat colour): merged even past max_area,
# rather than splitting a blank space with arbitrary lines.
FLAT = 0.2


@dataclass(frozen=True)
class MergeRules:
    threshold: float  # borders cheaper than this are removed
    min_area: int  # pixels: smaller areas are always merged
    min_width: float  # pixels: areas thinner than this (twice their largest inscribed radius) are merged
    max_area: int  # pixels: no merge may create a larger area


def gradient(lab: np.ndarray) -> np.ndarray:
    """Colour gradient magnitude (sum over the Lab channels), float32."""
    total = np.zeros(lab.shape[:2], np.float32)
    for channel in cv2.split(lab.astype(np.float32)):
        gx = cv2.Sobel(channel, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(channel, cv2.CV_32F, 0, 1, ksize=3)
        total += np.sqrt(gx * gx + gy * gy)  # not cv2.magnitude: its last bit varies between calls
    return total / 8.0


def oversegment(image_bgr: np.ndarray, grad: np.ndarray, cell: int) -> np.ndarray:
    """Watershed from one seed per `cell`×`cell` square, placed at the square's lowest gradient; every pixel
    gets a label from 1 (OpenCV's border pixels are given to their nearest region)."""
    height, width = grad.shape
    cell_y, cell_x = min(cell, height), min(cell, width)  # a picture thinner than a cell gets one seed row
    rows, cols = height // cell_y, width // cell_x
    cropped = grad[: rows * cell_y, : cols * cell_x].reshape(rows, cell_y, cols, cell_x).transpose(0, 2, 1, 3)
    best = cropped.reshape(rows, cols, cell_y * cell_x).argmin(axis=2)
    ys = (np.arange(rows)[:, None] * cell_y + best // cell_x).ravel()
    xs = (np.arange(cols)[None, :] * cell_x + best % cell_x).ravel()
    markers = np.zeros((height, width), np.int32)
    markers[ys, xs] = np.arange(1, len(ys) + 1, dtype=np.int32)
    cv2.watershed(image_bgr, markers)
    unlabeled = markers <= 0
    if unlabeled.all():  # OpenCV marks the outermost pixels as borders: a picture 1 or 2 px thin has no inside
        return np.ones_like(markers)
    if unlabeled.any():
        _, (iy, ix) = ndimage.distance_transform_edt(unlabeled, return_indices=True)
        markers = markers[iy, ix]
    return markers


class _Graph:
    """Region adjacency with colour sums and border statistics, merged in place."""

    def __init__(self, labels: np.ndarray, lab: np.ndarray, grad: np.ndarray) -> None:
        count = int(labels.max()) + 1
        flat = labels.ravel()
        # Plain Python lists: the merge loop touches single entries, where numpy scalars are slow.
        self.size: list[float] = np.bincount(flat, minlength=count).astype(np.float64).tolist()
        self.colour: list[list[float]] = np.stack(
            [np.bincount(flat, weights=lab[..., c].ravel(), minlength=count) for c in range(3)], axis=1
        ).tolist()
        self.parent = np.arange(count)
        self.edges: list[dict[int, list[float]]] = [{} for _ in range(count)]
        pairs = []
        for a, b, ga, gb in (
            (labels[:, :-1], labels[:, 1:], grad[:, :-1], grad[:, 1:]),
            (labels[:-1, :], labels[1:, :], grad[:-1, :], grad[1:, :]),
        ):
            differ = a != b
            lo = np.minimum(a[differ], b[differ]).astype(np.int64)
            hi = np.maximum(a[differ], b[differ]).astype(np.int64)
            pairs.append((lo * count + hi, (ga[differ] + gb[differ]) * 0.5))
        keys = np.concatenate([p[0] for p in pairs])
        values = np.concatenate([p[1] for p in pairs])
        unique, inverse = np.unique(keys, return_inverse=True)
        lengths = np.bincount(inverse)
        sums = np.bincount(inverse, weights=values)
        for key, length, total in zip(unique.tolist(), lengths.tolist(), sums.tolist(), strict=True):
            a, b = divmod(key, count)
            self.edges[a][b] = [length, total]
            self.edges[b][a] = [length, total]

    def find(self, region: int) -> int:
        root = region
        while self.parent[root] != root:
            root = int(self.parent[root])
        while self.parent[region] != root:
            self.parent[region], region = root, int(self.parent[region])
        return root

    def cost(self, a: int, b: int, rules: MergeRules, forced: list[bool]) -> float:
        length, total = self.edges[a][b]
        size_a, size_b = self.size[a], self.size[b]
        ca, cb = self.colour[a], self.colour[b]
        difference = math.sqrt(sum((ca[i] / size_a - cb[i] / size_b) ** 2 for i in range(3)))
        cost = total / length + 0.5 * difference
        if size_a + size_b > rules.max_area and cost > rules.threshold * FLAT:
            return math.inf
        if forced[a] or forced[b]:
            cost -= 1e6  # before any ordinary merge
        return cost

    def merge(self, a: int, b: int) -> None:
        """Merge b into a."""
        self.parent[b] = a
        self.size[a] += self.size[b]
        self.colour[a] = [x + y for x, y in zip(self.colour[a], self.colour[b], strict=True)]
        for other, (length, total) in self.edges[b].items():
            del self.edges[other][b]
            if other == a:
                continue
            entry = self.edges[a].setdefault(other, [0.0, 0.0])
            entry[0] += length
            entry[1] += total
            self.edges[other][a] = entry
        self.edges[b] = {}


def merge_regions(labels: np.ndarray, lab: np.ndarray, grad: np.ndarray, rules: MergeRules) -> np.ndarray:
    """Greedy region merging (see the module's docstring); returns labels numbered from 0."""
    graph = _Graph(labels, lab, grad)
    for round_ in range(3):  # thinness is measured on the merged map, which then changes: a few rounds
        sizes = np.asarray(graph.size)
        forced = (sizes < rules.min_area) | _thin(labels, graph, rules.min_width)
        if not forced[graph.parent == np.arange(len(sizes))].any() and round_ > 0:
            break
        _merge_all(graph, rules, forced.tolist())
        labels = _relabel(labels, graph)
    _, compact = np.unique(labels, return_inverse=True)
    return compact.reshape(labels.shape).astype(np.int32)


def _relabel(labels: np.ndarray, graph: _Graph) -> np.ndarray:
    roots = np.array([graph.find(i) for i in range(len(graph.parent))])
    return np.asarray(roots[labels], dtype=np.int32)


def _thin(labels: np.ndarray, graph: _Graph, min_width: float) -> np.ndarray:
    """Live regions whose largest inscribed disc is narrower than `min_width`."""
    inside = np.ones(labels.shape, bool)
    inside[:, :-1] &= labels[:, :-1] == labels[:, 1:]
    inside[:, 1:] &= labels[:, :-1] == labels[:, 1:]
    inside[:-1, :] &= labels[:-1, :] == labels[1:, :]
    inside[1:, :] &= labels[:-1, :] == labels[1:, :]
    distance = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    count = len(graph.parent)
    radius = np.asarray(ndimage.maximum(distance, labels, index=np.arange(count)), dtype=np.float64)
    live = graph.parent == np.arange(count)
    return np.asarray(live & (2 * radius + 1 < min_width) & (np.asarray(graph.size) > 0))


def _merge_all(graph: _Graph, rules: MergeRules, forced: list[bool]) -> None:
    # Heap entries carry the two regions' versions: a region's version changes when it grows, and then fresh
    # entries are pushed for all its borders, so outdated entries are just dropped.
    version = [0] * len(graph.parent)
    heap: list[tuple[float, int, int, int, int]] = []
    for a, neighbours in enumerate(graph.edges):
        for b in neighbours:
            if a < b:
                heap.append((graph.cost(a, b, rules, forced), a, b, 0, 0))
    heapq.heapify(heap)
    while heap:
        cost, a, b, version_a, version_b = heapq.heappop(heap)
        if version[a] != version_a or version[b] != version_b or graph.parent[a] != a or graph.parent[b] != b:
            continue
        if cost >= rules.threshold:
            break
        if graph.size[b] > graph.size[a]:
            a, b = b, a
        graph.merge(a, b)
        version[a] += 1
        forced[a] = graph.size[a] < rules.min_area
        for other in graph.edges[a]:
            x, y = (a, other) if a < other else (other, a)
            heapq.heappush(heap, (graph.cost(x, y, rules, forced), x, y, version[x], version[y]))
