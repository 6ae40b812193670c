"""Coloring pages: do they have closed areas a child can colour, clean lines and no specks?

For scikit-image's photos astronaut, coffee, chelsea and rocket (enlarged to ~2 MP, as a phone photo shrunk
for chat would be), each style's page is measured as printed on A4 (the picture fitted inside 1 cm margins):

- largest white area: the biggest connected white area, as a share of the picture; target ≤ 20%;
- line ends per metre: the ink is skeletonised, skeleton pixels with a single neighbour are ends; divided by
  the skeleton's printed length in metres; target ≤ 20 (open strokes and spurs both count);
- specks per 100 cm²: ink components that fit in a 3 mm × 3 mm square; target ≤ 2.

A plain Canny edge map (σ 2 px at the page's size, strokes 3 px wide) is measured the same way for reference.

    .venv/bin/python bench/lineart.py [--styles detailed simple bold] [--save DIR]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data as samples
from skimage.morphology import skeletonize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.providers.local.lineart import PAGE_SIDE, render_coloring
from bot.providers.local.page_pdf import printed_scale

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
SPECK_MM = 3.0


def photo(name: str) -> np.ndarray:
    rgb = getattr(samples, name)()
    scale = np.sqrt(2_000_000 / (rgb.shape[0] * rgb.shape[1]))
    return np.asarray(cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))


def metrics(ink: np.ndarray) -> dict[str, float]:
    height, width = ink.shape
    mm_per_px = printed_scale("a4", width, height)
    _, _, stats, _ = cv2.connectedComponentsWithStats((~ink).astype(np.uint8), connectivity=4)
    largest = stats[1:, cv2.CC_STAT_AREA].max() / ink.size if len(stats) > 1 else 0.0
    skeleton = skeletonize(ink).astype(np.uint8)
    neighbours = cv2.filter2D(skeleton, -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT) - skeleton
    ends = int(((skeleton == 1) & (neighbours == 1)).sum())
    metres = skeleton.sum() * mm_per_px / 1000.0
    _, _, ink_stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    side = SPECK_MM / mm_per_px
    specks = int(((ink_stats[1:, cv2.CC_STAT_WIDTH] <= side) & (ink_stats[1:, cv2.CC_STAT_HEIGHT] <= side)).sum())
    area_cm2 = ink.size * (mm_per_px / 10.0) ** 2
    return {
        "largest": 100.0 * largest,
        "ends_per_m": ends / metres if metres else 0.0,
        "specks": specks * 100.0 / area_cm2,
        "ink": 100.0 * ink.mean(),
        "areas": float(len(stats) - 1),
    }


def canny_baseline(rgb: np.ndarray) -> np.ndarray:
    scale = PAGE_SIDE / max(rgb.shape[:2])
    page = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    grey = cv2.GaussianBlur(cv2.cvtColor(page, cv2.COLOR_RGB2GRAY), (0, 0), 2.0)
    edges = cv2.Canny(grey, 30, 90)
    return np.asarray(cv2.dilate(edges, np.ones((3, 3), np.uint8)) > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--styles", nargs="+", default=["detailed", "simple", "bold"])
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS))
    parser.add_argument("--save", type=Path, help="write each page as PNG here, to look at")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    header = (
        f"{'photo':<10} {'style':<9} {'largest %':>9} {'ends/m':>7} {'specks':>7} {'ink %':>6} {'areas':>6} "
        f"{'cpu s':>6}"
    )
    print(header)
    print("-" * len(header))
    fails = 0
    for name in args.photos:
        rgb = photo(name)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "PNG")
        for style in args.styles:
            start = time.process_time()
            rendered = render_coloring(buffer.getvalue(), {"style": style, "paper": "a4"})
            cpu = time.process_time() - start
            page = np.asarray(Image.open(io.BytesIO(rendered.files[0].data)).convert("L"))
            if args.save:
                (args.save / f"{name}-{style}.png").write_bytes(rendered.files[0].data)
            m = metrics(page < 128)
            ok = m["largest"] <= 20 and m["ends_per_m"] <= 20 and m["specks"] <= 2
            fails += not ok
            print(
                f"{name:<10} {style:<9} {m['largest']:>9.1f} {m['ends_per_m']:>7.1f} {m['specks']:>7.2f} "
                f"{m['ink']:>6.1f} {m['areas']:>6.0f} {cpu:>6.2f}{'' if ok else '  ✗'}"
            )
        m = metrics(canny_baseline(rgb))
        print(
            f"{name:<10} {'(canny)':<9} {m['largest']:>9.1f} {m['ends_per_m']:>7.1f} {m['specks']:>7.2f} "
            f"{m['ink']:>6.1f} {m['areas']:>6.0f}"
        )
    print(f"\ntargets: largest ≤ 20%, ≤ 20 ends/m, ≤ 2 specks/100 cm²; pages missing a target: {fails}")


if __name__ == "__main__":
    main()
