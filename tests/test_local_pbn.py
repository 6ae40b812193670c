"""Easel's own paint-by-numbers: every output, its quality rules on a real picture, edge-case inputs, options;
and the benchmark's metrics on tiny synthetic pictures."""

from __future__ import annotations

import base64
import csv
import importlib.util
import io
import re
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bot.providers.local import pbn_segment
from bot.providers.local.common import Rendered, RenderError
from bot.providers.local.pbn import PbnOptions, render_pbn

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"


def _metrics() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pbn_metrics", ROOT / "bench" / "pbn_metrics.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pbn_metrics"] = module
    spec.loader.exec_module(module)
    return module


metrics = _metrics()


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def _scene(width: int = 900, height: int = 640) -> Image.Image:
    """Shapes of distinct colours on a sky gradient, with a little noise: like a simple photo."""
    y = np.linspace(0, 1, height)[:, None, None]
    sky = (np.array([120, 170, 230]) * (1 - y) + np.array([230, 240, 250]) * y) * np.ones((1, width, 1))
    image = Image.fromarray(sky.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, int(height * 0.7), width, height), fill=(70, 130, 50))
    draw.ellipse((80, 80, 300, 300), fill=(250, 200, 40))
    draw.polygon([(420, 470), (600, 200), (780, 470)], fill=(150, 60, 40))
    draw.rectangle((470, 380, 530, 470), fill=(90, 50, 30))
    draw.ellipse((640, 520, 700, 580), fill=(220, 30, 60))
    noisy = np.asarray(image).astype(np.int16) + np.random.default_rng(1).integers(-6, 7, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _by_label(result: Rendered) -> dict[str, Any]:
    return {f.label: f for f in result.files}


def _svg_numbers(svg: bytes) -> list[int]:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    return [int(t.text or "") for t in root.iter(f"{SVG}text")]


@pytest.fixture(scope="module")
def scene_result() -> Rendered:
    return render_pbn(_png(_scene()), {"colors": 12})


def test_every_output_is_there_and_opens(scene_result: Rendered) -> None:
    files = _by_label(scene_result)
    assert {"template", "preview", "legend", "svg", "pdf", "csv", "gpl"} <= set(files)
    assert [f.label for f in scene_result.files if f.send] == ["template", "preview", "legend"]
    for label in ("template", "preview", "legend"):
        with Image.open(io.BytesIO(files[label].data)) as image:
            image.load()
            assert image.width > 100
    root = ET.fromstring(files["svg"].data)  # noqa: S314 - our own output
    assert root.tag == f"{SVG}svg"
    assert root.get("width") == "270mm"
    assert len(list(root.iter(f"{SVG}path"))) == scene_result.meta["regions"]
    pdf = files["pdf"].data
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type /Page\b", pdf)) == 2  # template + legend
    assert re.search(rb"/Count 2\b", pdf)
    # The template page is vector: its content stream draws lines and text, not only a picture.
    streams = [_pdf_stream(m) for m in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S)]
    template = next(stream for stream in streams if b"Tj" in stream)
    assert b" l\n" in template or b" l " in template
    assert b"Tj" in template


def _pdf_stream(raw: bytes) -> bytes:
    """A content stream as reportlab writes it: ASCII85 over Flate."""
    raw = raw.strip()
    if raw.endswith(b"~>"):
        raw = base64.a85decode(raw[:-2].replace(b"\n", b""))
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return b""


def test_numbers_match_the_legend(scene_result: Rendered) -> None:
    files = _by_label(scene_result)
    colours = scene_result.meta["colors"]
    numbers = _svg_numbers(files["svg"].data)
    assert len(numbers) == scene_result.meta["regions"]  # one number per region
    assert set(numbers) == set(range(1, colours + 1))  # start at 1, every colour is used, none beyond
    legend_lines = (scene_result.text or "").splitlines()[1:]
    assert [int(line.split("`")[1]) for line in legend_lines] == list(range(1, colours + 1))
    rows = list(csv.DictReader(io.StringIO(files["csv"].data.decode())))
    assert [int(r["number"]) for r in rows] == list(range(1, colours + 1))
    assert all(re.fullmatch(r"#[0-9A-F]{6}", r["hex"]) and r["name"] for r in rows)
    assert len({r["name"] for r in rows}) == colours  # names tell colours apart
    gpl = files["gpl"].data.decode().splitlines()
    assert gpl[0] == "GIMP Palette"
    assert len([line for line in gpl if re.match(r"\s*\d+\s+\d+\s+\d+\t", line)]) == colours


def test_regions_are_paintable_and_numbers_legible(scene_result: Rendered) -> None:
    files = _by_label(scene_result)
    fill = np.asarray(Image.open(io.BytesIO(files["preview"].data)).convert("RGB"))
    mm_per_px = 270 / fill.shape[1]
    regions, _ = metrics.region_map(fill)
    assert int(regions.max()) + 1 == scene_result.meta["regions"]
    boxes = metrics.svg_label_boxes(files["svg"].data, 1 / mm_per_px)
    legible, crossing, unlabelled = metrics.label_figures(regions, boxes, mm_per_px)
    assert (legible, crossing, unlabelled) == (1.0, 0, 0)
    assert metrics.tiny_share(regions, mm_per_px) == 0.0
    assert metrics.jaggedness(regions, mm_per_px) < 1.2
    # The shapes keep their colours: the sun stays yellow, the roof red-brown.
    assert [int(v) for v in fill[190, 190]] == pytest.approx([250, 200, 40], abs=12)
    assert [int(v) for v in fill[400, 600]] == pytest.approx([150, 60, 40], abs=12)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("tiny", lambda: _png(_scene().resize((100, 80)))),
        ("huge", lambda: _png(_scene().resize((6000, 4000)), "JPEG")),
        ("grey", lambda: _png(_scene().convert("L"))),
        ("rgba", lambda: _png(_with_alpha(_scene()))),
        ("flat", lambda: _png(Image.new("RGB", (640, 480), (30, 120, 200)))),
        ("16-bit", lambda: _png(Image.fromarray(np.asarray(_scene().convert("L"), np.uint16) * 257))),
        ("strip", lambda: _png(_scene().resize((4000, 12)))),
    ],
)
def test_edge_case_inputs_render(name: str, make: Any) -> None:
    result = render_pbn(make(), {"working_size": 512})
    files = _by_label(result)
    numbers = _svg_numbers(files["svg"].data)
    assert len(numbers) == result.meta["regions"] >= 1
    assert set(numbers) == set(range(1, result.meta["colors"] + 1))
    if name == "16-bit":  # stretched to 8 bits, not clipped to one white
        assert result.meta["colors"] > 3
    if name == "flat":
        assert (result.meta["colors"], result.meta["regions"]) == (1, 1)
        assert "#1E78C8" in (result.text or "")


def _with_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    alpha = Image.new("L", rgba.size, 255)
    ImageDraw.Draw(alpha).rectangle((0, 0, rgba.width // 2, rgba.height), fill=0)
    rgba.putalpha(alpha)
    return rgba


def _galaxies() -> tuple[bytes, list[tuple[int, int]]]:
    """Small two-tone objects on a dark sky: a pale core in a red ring, each part alone too small to paint
    (core ~2 mm, ring ~1.3 mm wide at 270 mm across), the whole ~5 mm."""
    image = Image.new("RGB", (1024, 700), (20, 24, 40))
    draw = ImageDraw.Draw(image)
    centres = [(150 + 180 * i, 150 + 200 * j) for i in range(5) for j in range(3)]
    for x, y in centres:
        draw.ellipse((x - 9, y - 9, x + 9, y + 9), fill=(200, 60, 50))
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=(250, 235, 180))
    noisy = np.asarray(image).astype(np.int16) + np.random.default_rng(5).integers(-4, 5, (700, 1024, 3))
    return _png(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))), centres


@pytest.mark.parametrize("unite_rounds", [0, pbn_segment.UNITE_ROUNDS])
def test_small_parts_of_one_object_become_one_region(unite_rounds: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Merged one by one, core into ring and ring into the sky, every object vanishes (unite_rounds=0 shows
    it); united, each is one paintable region in a colour between its core and ring."""
    monkeypatch.setattr(pbn_segment, "UNITE_ROUNDS", unite_rounds)
    data, centres = _galaxies()
    result = render_pbn(data, {"colors": 8})
    fill = np.asarray(Image.open(io.BytesIO(_by_label(result)["preview"].data)).convert("RGB")).astype(int)
    sky = fill[5, 5]
    kept = [int(np.abs(fill[y, x] - sky).sum()) > 150 for x, y in centres]
    if unite_rounds == 0:
        assert not any(kept) and result.meta["regions"] == 1
        return
    assert all(kept) and result.meta["regions"] == 1 + len(centres)
    regions, _ = metrics.region_map(fill.astype(np.uint8))
    mm_per_px = 270 / fill.shape[1]
    assert metrics.tiny_share(regions, mm_per_px) == 0.0
    boxes = metrics.svg_label_boxes(_by_label(result)["svg"].data, 1 / mm_per_px)
    assert metrics.label_figures(regions, boxes, mm_per_px) == (1.0, 0, 0)


def test_canvas_and_crop_set_the_printed_size() -> None:
    data = _png(_scene(600, 800))
    fitted = _by_label(render_pbn(data, {"canvas_inches": (16, 12), "working_size": 384}))
    root = ET.fromstring(fitted["svg"].data)  # noqa: S314 - our own output
    assert (root.get("width"), root.get("height")) == ("304.8mm", "406.4mm")  # portrait picture: portrait canvas
    path = root.find(f"{SVG}g/{SVG}path")
    assert path is not None
    xs = [float(v) for v in re.findall(r"[-\d.]+", path.get("d", ""))[0::2]]
    assert min(xs) >= 0 and max(xs) <= 304.8
    cropped = render_pbn(_png(_scene(600, 600)), {"canvas_inches": (16, 12), "crop": True, "working_size": 384})
    with Image.open(io.BytesIO(_by_label(cropped)["preview"].data)) as preview:
        assert preview.size == (384, 288)  # cut to the canvas' 4:3


@pytest.mark.parametrize(
    "params",
    [
        {"colors": 6},
        {"colors": 101},
        {"detail": "ultra"},
        {"canvas_inches": (3, 10)},
        {"canvas_inches": (12, 50)},
        {"working_size": 100},
        {"min_area_mm": 0},
        {"print_long_side_mm": -5},
        {"colour": 16},
    ],
)
def test_bad_options_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(RenderError):
        render_pbn(_png(_scene(200, 150)), params)


def test_options_defaults() -> None:
    options = PbnOptions()
    assert (options.colors, options.detail, options.working_size, options.print_long_side_mm) == (
        16,
        "normal",
        1024,
        270.0,
    )


def test_not_an_image_is_refused() -> None:
    with pytest.raises(RenderError):
        render_pbn(b"not an image at all", {})


# --- the benchmark's metrics, on pictures whose answers are known ---


def test_metrics_tiny_share_and_regions() -> None:
    fill = np.zeros((100, 100, 3), dtype=np.uint8)
    fill[:, 50:] = (255, 0, 0)
    fill[10:13, 10:13] = (0, 0, 255)  # a 3 px speck: 0.75 mm at 0.25 mm/px
    regions, classes = metrics.region_map(fill)
    assert int(regions.max()) + 1 == 3
    assert len(np.unique(classes)) == 3
    assert metrics.tiny_share(regions, 0.25) == pytest.approx(1 / 3)
    assert metrics.tiny_share(regions, 2.0) == 0.0  # the same speck is 6 mm across printed 8× larger


def test_metrics_labels() -> None:
    regions = np.zeros((100, 100), dtype=np.int32)
    regions[:, 50:] = 1
    box = metrics.LabelBox
    # 0.25 mm/px: 1.2 mm is 4.8 px tall.
    good = box(10, 10, 18, 16, "12")
    small = box(60, 10, 64, 13, "3")
    crossing = box(45, 40, 55, 46, "7")
    assert metrics.label_figures(regions, [good], 0.25) == (0.5, 0, 1)
    assert metrics.label_figures(regions, [good, small], 0.25) == (0.5, 0, 0)
    assert metrics.label_figures(regions, [good, crossing], 0.25)[1] == 1
    hugging = box(44.5, 10, 49.9, 16, "5")  # inside, but closer than 0.15 mm to the border
    assert metrics.label_figures(regions, [hugging], 0.25)[0] == 0.0


def test_metrics_svg_boxes_follow_translate_and_anchor() -> None:
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg"><g transform="translate(10,20)">'
        b'<text x="5" y="30" font-size="10" text-anchor="middle">12</text></g></svg>'
    )
    (only,) = metrics.svg_label_boxes(svg, 2.0)
    assert only.text == "12"
    assert (only.x0, only.x1) == pytest.approx((2 * (15 - 5.56), 2 * (15 + 5.56)))
    assert (only.y0, only.y1) == pytest.approx((2 * (50 - 7.1), 100))
    # A label in its own viewport, centred on its middle (as drake7707's generator writes them).
    nested = (
        b'<svg xmlns="http://www.w3.org/2000/svg"><g transform="translate(100,200)">'
        b'<svg width="20" height="20" viewBox="-50 -50 100 100"><text font-size="50" dominant-baseline="middle"'
        b' text-anchor="middle">4</text></svg></g></svg>'
    )
    (four,) = metrics.svg_label_boxes(nested, 1.0)
    assert ((four.x0 + four.x1) / 2, (four.y0 + four.y1) / 2) == pytest.approx((110, 210))
    assert four.y1 - four.y0 == pytest.approx(0.71 * 10)


def test_metrics_jaggedness_color_error_and_boundary_f() -> None:
    yy, xx = np.mgrid[0:200, 0:200]
    disc = ((xx - 100) ** 2 + (yy - 100) ** 2 < 60**2).astype(np.int32)
    assert metrics.jaggedness(disc, 0.25) < 1.1
    noisy = disc.copy()
    edge = metrics._edges(disc) & (np.random.default_rng(0).random(disc.shape) < 0.5)
    noisy[edge] = 1 - noisy[edge]
    assert metrics.jaggedness(noisy, 0.25) > metrics.jaggedness(disc, 0.25) + 0.1
    photo = np.full((10, 10, 3), 128, dtype=np.uint8)
    assert metrics.color_error(photo, photo) == (0.0, 0.0)
    assert metrics.color_error(photo, np.zeros_like(photo))[0] > 30
    shifted = np.roll(disc, 2, axis=1)
    assert metrics.boundary_f(shifted, disc, 0.25) == pytest.approx(1.0)  # 0.5 mm off: within tolerance
    far = np.roll(disc, 12, axis=1)
    assert metrics.boundary_f(far, disc, 0.25) < 0.5
