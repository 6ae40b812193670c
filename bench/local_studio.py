"""Easel's paint-by-numbers against public generators, on the same pictures, in one run.

    .venv/bin/python bench/local_studio.py [--only astronaut,generated] [--tools easel,paintify,drake]

Every tool runs in its own subprocess (one thread: OMP/BLAS/libuv pools set to 1) with the same settings:
16 colours, ~1024 px working size, printed 270 mm on the long side. Figures come from each tool's outputs
only (bench/pbn_metrics.py): a flat-filled picture and its label boxes. Prints one row per picture and tool.

Anchors are found through environment variables and reported "not available" when missing:
- PAINTIFY_PYTHON: a Python with the `paintify` package (PyPI) installed;
- PBNGEN_CLI: drake7707/paintbynumbersgenerator's compiled src-cli/main.js (run with NODE, default "node").
Neither is part of this repository. Never run as a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pbn_metrics  # noqa: E402

COLORS = 16
WORKING = 1024
LONG_MM = 270.0
TIMEOUT = 900
GNU_TIME = "/usr/bin/time"
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "UV_THREADPOOL_SIZE": "1",
}


@dataclass
class Case:
    name: str
    path: Path
    photo: np.ndarray  # RGB, what the colour error compares against
    truth: np.ndarray | None = None


@dataclass
class Run:
    seconds: float
    cpu: float
    peak_mb: float
    ok: bool
    error: str = ""


# --- inputs ---


def _to_2mp(rgb: np.ndarray) -> np.ndarray:
    scale = (2_000_000 / (rgb.shape[0] * rgb.shape[1])) ** 0.5
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)


def _generated(width: int = 1640, height: int = 1220, cells: int = 36) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi cells in 12 well-separated colours (neighbours never share one), with shading and noise;
    returns the picture and its true region map."""
    rng = np.random.default_rng(3)
    seeds = rng.uniform((0, 0), (width, height), size=(cells, 2))
    yy, xx = np.mgrid[0:height, 0:width]
    best = np.full((height, width), np.inf)
    truth = np.zeros((height, width), dtype=np.int32)
    for i, (sx, sy) in enumerate(seeds):
        d = (xx - sx) ** 2 + (yy - sy) ** 2
        closer = d < best
        best[closer] = d[closer]
        truth[closer] = i
    palette = np.array(
        [
            (230, 57, 70), (241, 250, 238), (69, 123, 157), (29, 53, 87), (244, 162, 97), (42, 157, 143),
            (233, 196, 106), (38, 70, 83), (131, 56, 236), (255, 190, 11), (120, 80, 40), (160, 210, 90),
        ],
        dtype=np.float64,
    )  # fmt: skip
    neighbours: dict[int, set[int]] = {i: set() for i in range(cells)}
    for a, b in ((truth[:, :-1], truth[:, 1:]), (truth[:-1, :], truth[1:, :])):
        pairs = np.unique(np.stack([a[a != b], b[a != b]], axis=1), axis=0)
        for p, q in pairs:
            neighbours[int(p)].add(int(q))
            neighbours[int(q)].add(int(p))
    colour = np.zeros(cells, dtype=np.int32)
    for i in range(cells):
        taken = {int(colour[j]) for j in neighbours[i] if j < i}
        colour[i] = next(c for c in rng.permutation(len(palette)) if int(c) not in taken)
    shade = 1 + 0.06 * np.sin(xx / 170.0) * np.cos(yy / 230.0)
    picture = palette[colour[truth]] * shade[..., None] + rng.normal(0, 4, (height, width, 3))
    return np.clip(picture, 0, 255).astype(np.uint8), truth


def make_cases(folder: Path, only: set[str] | None) -> list[Case]:
    from skimage import data

    cases: list[Case] = []

    def add(name: str, image: Image.Image, fmt: str = "PNG", truth: np.ndarray | None = None) -> None:
        if only and name not in only:
            return
        path = folder / f"{name}.{fmt.lower()}"
        image.save(path, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.split()[-1])
        cases.append(Case(name, path, np.asarray(flat), truth))

    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field"):
        add(name, Image.fromarray(_to_2mp(getattr(data, name)())))
    picture, truth = _generated()
    add("generated", Image.fromarray(picture), truth=truth)
    add("tiny_100x80", Image.fromarray(cv2.resize(data.astronaut(), (100, 80), interpolation=cv2.INTER_AREA)))
    add("huge_6000x4000", Image.fromarray(cv2.resize(data.coffee(), (6000, 4000))), "JPEG")
    add("greyscale", Image.fromarray(_to_2mp(data.camera())))
    chelsea = Image.fromarray(_to_2mp(data.chelsea())).convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, chelsea.width, dtype=np.uint8), (chelsea.height, 1))
    chelsea.putalpha(Image.fromarray(alpha))
    add("rgba", chelsea)
    add("flat", Image.new("RGB", (1600, 1200), (46, 139, 87)))
    return cases


NOT_RUN = Run(0, 0, 0, True)

# --- running a tool in a subprocess, with its own time, CPU and peak memory ---


def run(command: list[str], cwd: Path | None = None) -> Run:
    """Runs the command under GNU time: a child forked from this (big) process would report this process's
    memory as its own peak, Linux keeping the max RSS across exec; time's own child starts small."""
    env = {**os.environ, **ONE_THREAD}
    with tempfile.NamedTemporaryFile(suffix=".time") as stats, tempfile.TemporaryFile() as log:
        wrapped = [GNU_TIME, "-o", stats.name, "-f", "%e %U %S %M", *command]
        try:
            process = subprocess.run(wrapped, cwd=cwd, env=env, stdout=log, stderr=log, timeout=TIMEOUT, check=False)  # noqa: S603
        except subprocess.TimeoutExpired:
            return Run(TIMEOUT, 0, 0, False, f"timed out after {TIMEOUT} s")
        log.seek(0)
        tail = log.read()[-400:].decode(errors="replace").strip().replace("\n", " | ")
        figures = Path(stats.name).read_text().split()[-4:]
    wall, user, system, peak_kb = (float(v) for v in figures)
    return Run(wall, user + system, peak_kb / 1024, process.returncode == 0, tail[-160:])


@dataclass
class Output:
    fill: np.ndarray
    boxes: list[pbn_metrics.LabelBox]


def _read_rgb(path: Path, long_side: int | None = None) -> np.ndarray:
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    if long_side and max(rgb.shape[:2]) > long_side:
        scale = long_side / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST)
    return rgb


def _snap(fill: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Every pixel to the nearest colour of the tool's own palette."""
    if not len(palette):
        return fill
    nearest = np.empty(fill.shape[0] * fill.shape[1], dtype=np.int64)
    flat = fill.reshape(-1, 3).astype(np.float32)
    for start in range(0, len(flat), 200_000):
        chunk = flat[start : start + 200_000]
        nearest[start : start + 200_000] = ((chunk[:, None, :] - palette[None]) ** 2).sum(axis=2).argmin(axis=1)
    return palette[nearest].reshape(fill.shape).astype(np.uint8)


def _deantialias(fill: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Pixels that are not exactly a palette colour take the nearest exact pixel's colour (by position)."""
    codes = (fill[..., 0].astype(np.int64) << 16) | (fill[..., 1].astype(np.int64) << 8) | fill[..., 2]
    wanted = palette.astype(np.int64)
    exact = np.isin(codes, (wanted[:, 0] << 16) | (wanted[:, 1] << 8) | wanted[:, 2])
    if not exact.any():
        return _snap(fill, palette)
    _, (rows, cols) = ndimage.distance_transform_edt(~exact, return_indices=True)
    return fill[rows, cols]


def tool_easel(case: Case, out: Path, execute: bool = True) -> tuple[Run, Callable[[], Output] | None]:
    # A bare interpreter that imports only the generator (not this bench's metrics and anchor readers).
    command = [sys.executable, "-c", EASEL_WORKER, str(case.path), str(out)]
    result = run(command) if execute else NOT_RUN

    def read() -> Output:
        fill = _read_rgb(out / "pbn-preview.png")
        mm_per_px = LONG_MM / max(fill.shape[:2])
        return Output(fill, pbn_metrics.svg_label_boxes((out / "pbn-template.svg").read_bytes(), 1 / mm_per_px))

    return result, read


def tool_paintify(case: Case, out: Path, execute: bool = True) -> tuple[Run, Callable[[], Output] | None]:
    python = os.environ.get("PAINTIFY_PYTHON")
    if not python:
        return Run(0, 0, 0, False, "not available"), None
    script = "import sys; from paintify.cli import app; sys.argv[0] = 'paintify'; sys.exit(app())"
    command = [python, "-c", script, str(case.path), "-o", str(out), "-c", str(COLORS), "--max-size", str(WORKING)]
    result = run(command) if execute else NOT_RUN

    def read() -> Output:
        manifest = json.loads((out / "manifest.json").read_text())
        width, height = manifest["image_size"]["width"], manifest["image_size"]["height"]
        # preview.png is the fill drawn at a multiple of the working size with black outlines and numbers on
        # it: the centre of each working pixel's block is its fill, and pure black is ink, filled from the
        # nearest known pixel (the palette's own black is never exactly 0,0,0).
        big = _read_rgb(out / "preview.png")
        step = big.shape[1] // width
        centres = big[step // 2 :: step, step // 2 :: step][:height, :width]
        ink = (centres == 0).all(axis=2)
        if ink.all():
            fill = centres
        else:
            _, (rows, cols) = ndimage.distance_transform_edt(ink, return_indices=True)
            fill = centres[rows, cols]
        # Anti-aliased number edges snap back to the paint they sit on.
        fill = _snap(fill, np.array([colour["rgb"] for colour in manifest["palette"]], dtype=np.float32))
        return Output(fill, pbn_metrics.svg_label_boxes((out / "outline.svg").read_bytes(), 1.0))

    return result, read


def tool_drake(case: Case, out: Path, execute: bool = True) -> tuple[Run, Callable[[], Output] | None]:
    cli = os.environ.get("PBNGEN_CLI")
    if not cli:
        return Run(0, 0, 0, False, "not available"), None
    profile = {"svgFontSize": 50, "svgFontColor": "#333"}
    settings = {
        "randomSeed": 7707,
        "kMeansNrOfClusters": COLORS,
        "kMeansMinDeltaDifference": 1,
        "kMeansClusteringColorSpace": 0,
        "kMeansColorRestrictions": [],
        "colorAliases": {},
        "removeFacetsSmallerThanNrOfPoints": 20,
        "removeFacetsFromLargeToSmall": True,
        "maximumNumberOfFacets": 100000,
        "nrOfTimesToHalveBorderSegments": 2,
        "narrowPixelStripCleanupRuns": 3,
        "resizeImageIfTooLarge": True,
        "resizeImageWidth": WORKING,
        "resizeImageHeight": WORKING,
        "outputProfiles": [
            {"name": "fill", "svgShowLabels": False, "svgFillFacets": True, "svgShowBorders": False}
            | {"svgSizeMultiplier": 1, "filetype": "png"}
            | profile,
            {"name": "labels", "svgShowLabels": True, "svgFillFacets": False, "svgShowBorders": True}
            | {"svgSizeMultiplier": 1, "filetype": "svg"}
            | profile,
        ],
    }
    if execute:
        (out / "settings.json").write_text(json.dumps(settings))
    node = os.environ.get("NODE", "node")
    cli_path = Path(cli).resolve()
    command = [node, str(cli_path), "-i", str(case.path), "-o", str(out / "out.svg"), "-c", str(out / "settings.json")]
    result = run(command, cwd=cli_path.parent) if execute else NOT_RUN

    def read() -> Output:
        fill = _read_rgb(out / "out-fill.png")
        # The fill is drawn from SVG paths with anti-aliased facet edges: a blended edge pixel takes the
        # colour of the nearest pixel that is exactly one of the palette colours it reports.
        palette = np.array([entry["color"] for entry in json.loads((out / "out.json").read_text())], np.float32)
        fill = _deantialias(fill, palette)
        return Output(fill, pbn_metrics.svg_label_boxes((out / "out-labels.svg").read_bytes(), 1.0))

    return result, read


TOOLS: dict[str, Callable[[Case, Path, bool], tuple[Run, Callable[[], Output] | None]]] = {
    "easel": tool_easel,
    "paintify": tool_paintify,
    "drake": tool_drake,
}


EASEL_WORKER = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from bot.providers.local.pbn import render_pbn
rendered = render_pbn(
    Path(sys.argv[1]).read_bytes(),
    {{"colors": {COLORS}, "working_size": {WORKING}, "print_long_side_mm": {LONG_MM}}},
)
for file in rendered.files:
    (Path(sys.argv[2]) / file.filename).write_bytes(file.data)
"""


HEADER = (
    f"{'picture':<18}{'tool':<10}{'regions':>8}{'cols':>5}{'tiny':>6}{'dE':>6}{'dE95':>6}{'legib':>7}"
    f"{'cross':>6}{'nonum':>6}{'jag':>6}{'F':>6}{'wall s':>8}{'cpu s':>7}{'MB':>6}  status"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated picture names")
    parser.add_argument("--tools", default="easel,paintify,drake")
    parser.add_argument("--keep", help="keep every output under this folder")
    parser.add_argument("--reuse", action="store_true", help="with --keep: measure outputs kept from a run")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(args.keep) if args.keep else Path(scratch)
        inputs = base / "inputs"
        inputs.mkdir(parents=True, exist_ok=True)
        cases = make_cases(inputs, only)
        print(HEADER, flush=True)
        for case in cases:
            for tool in args.tools.split(","):
                out = base / tool / case.name
                out.mkdir(parents=True, exist_ok=True)
                saved = out / "run.json"
                if args.reuse and saved.exists():
                    result, read = Run(**json.loads(saved.read_text())), TOOLS[tool](case, out, False)[1]
                else:
                    result, read = TOOLS[tool](case, out, True)
                    saved.write_text(json.dumps(result.__dict__))
                print(_row(case, tool, result, read), flush=True)


def _row(case: Case, tool: str, result: Run, read: Callable[[], Output] | None) -> str:
    head = f"{case.name:<18}{tool:<10}"
    timing = f"{result.seconds:>8.1f}{result.cpu:>7.1f}{result.peak_mb:>6.0f}"
    if read is None:
        return head + " " * 70 + "  not available"
    if not result.ok:
        return f"{head}{'':>70}{timing}  FAILED: {result.error}"
    try:
        output = read()
        mm_per_px = LONG_MM / max(output.fill.shape[:2])
        f = pbn_metrics.measure(case.photo, output.fill, output.boxes, mm_per_px, case.truth)
    except Exception as exc:
        return f"{head}{'':>70}{timing}  FAILED reading outputs: {type(exc).__name__}: {exc}"
    boundary = f"{f.boundary_f:>6.3f}" if f.boundary_f is not None else f"{'-':>6}"
    return (
        f"{head}{f.regions:>8}{f.colors:>5}{f.tiny_share:>6.2f}{f.de_mean:>6.2f}{f.de_p95:>6.1f}"
        f"{f.legible_share:>7.2f}{f.crossing:>6}{f.unlabelled:>6}{f.jaggedness:>6.2f}{boundary}{timing}  ok"
    )


if __name__ == "__main__":
    main()
