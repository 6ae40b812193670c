"""Easel's own studio: coloring pages, upscales and filters, on real image files."""

from __future__ import annotations

import io
import re
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.morphology import skeletonize

from bot.providers.local import upscale
from bot.providers.local.common import Rendered, RenderError
from bot.providers.local.filters import FilterOptions, render_filter
from bot.providers.local.lineart import render_coloring
from bot.providers.local.upscale import render_upscale, upscale_rgb

A4_PT = (595.3, 841.9)
LETTER_PT = (612.0, 792.0)


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def shapes_picture(width: int = 480, height: int = 360) -> np.ndarray:
    """Flat coloured shapes on a shaded background, with mild noise: a photo-like scene with known areas."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([120 + 60 * xx / width, 170 + 40 * yy / height, np.full(xx.shape, 210.0)], axis=2)
    img = base.astype(np.uint8)
    cv2.circle(img, (130, 150), 70, (220, 40, 40), -1)
    cv2.rectangle(img, (260, 70), (420, 200), (40, 160, 60), -1)
    cv2.ellipse(img, (330, 290), (90, 40), 0, 0, 360, (250, 210, 30), -1)
    noise = rng.normal(0, 4, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pdf_page_size(pdf: bytes) -> tuple[float, float]:
    match = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert match is not None
    x0, y0, x1, y1 = (float(v) for v in match.groups())
    return x1 - x0, y1 - y0


def same_paper(size: tuple[float, float], paper: tuple[float, float]) -> bool:
    return sorted(size) == pytest.approx(sorted(paper), abs=1.0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse)


# --- coloring pages


def test_coloring_page_is_black_lines_around_closed_areas() -> None:
    rendered = render_coloring(encode(shapes_picture()), {"style": "simple", "paper": "a4"})
    page_file = next(f for f in rendered.files if f.label == "page")
    pdf_file = next(f for f in rendered.files if f.label == "pdf")
    assert page_file.send is True
    assert pdf_file.send is False

    page = np.asarray(decode(page_file.data).convert("L"))
    assert page.shape[1] / page.shape[0] == pytest.approx(480 / 360, rel=0.01)
    assert set(np.unique(page)) <= {0, 255}  # pure black on white: prints cleanly
    ink = page == 0
    assert 0.01 < ink.mean() < 0.2  # mostly white, but there are lines

    # Each shape is its own closed area (a child can colour it without colouring the background), and the
    # area is about the shape's size.
    count, components = cv2.connectedComponents((~ink).astype(np.uint8), connectivity=4)
    scale = page.shape[1] / 480
    circle = components[int(150 * scale), int(130 * scale)]
    rectangle = components[int(135 * scale), int(340 * scale)]
    ellipse = components[int(290 * scale), int(330 * scale)]
    background = components[int(20 * scale), int(20 * scale)]
    assert len({circle, rectangle, ellipse, background}) == 4
    assert 0 not in {circle, rectangle, ellipse, background}
    circle_area = (components == circle).sum() / scale**2
    assert 0.6 * np.pi * 70**2 < circle_area < 1.05 * np.pi * 70**2
    assert count - 1 < 60  # a handful of areas, not a mosaic

    assert pdf_file.data.startswith(b"%PDF")
    assert same_paper(pdf_page_size(pdf_file.data), A4_PT)
    assert rendered.meta["style"] == "simple"

    # The same photo gives the same page (a member asking again gets what they saw).
    again = render_coloring(encode(shapes_picture()), {"style": "simple", "paper": "a4"})
    assert again.files[0].data == page_file.data


def test_coloring_styles_differ_in_detail_and_width() -> None:
    pages = {
        style: np.asarray(decode(render_coloring(encode(shapes_picture()), {"style": style}).files[0].data)) == 0
        for style in ("detailed", "simple", "bold")
    }
    assert pages["detailed"].shape == pages["simple"].shape == pages["bold"].shape
    assert not np.array_equal(pages["detailed"], pages["simple"])

    def stroke_width(ink: np.ndarray) -> float:  # ink area over centre-line length
        return float(ink.sum() / max(1, skeletonize(ink).sum()))

    widths = {style: stroke_width(ink) for style, ink in pages.items()}
    assert widths["detailed"] < widths["simple"] < widths["bold"]


def test_coloring_letter_paper_and_portrait_picture() -> None:
    picture = np.ascontiguousarray(shapes_picture().transpose(1, 0, 2))  # 360 wide, 480 high
    rendered = render_coloring(encode(picture), {"style": "simple", "paper": "letter"})
    pdf = next(f for f in rendered.files if f.label == "pdf").data
    width, height = pdf_page_size(pdf)
    assert (width, height) == pytest.approx(LETTER_PT, abs=1.0)


@pytest.mark.parametrize(
    "params", [{"style": "fancy"}, {"paper": "a3"}, {"style": "simple", "colour": "red"}, {"style": 3}]
)
def test_coloring_refuses_bad_options(params: dict[str, Any]) -> None:
    with pytest.raises(RenderError):
        render_coloring(encode(shapes_picture(120, 90)), params)


def test_refuses_what_is_not_an_image() -> None:
    for render, params in (
        (render_coloring, {}),
        (render_upscale, {}),
        (render_filter, {"filter": "oil"}),
    ):
        with pytest.raises(RenderError):
            render(b"GIF89a not really", params)


# --- edge cases, every renderer


def edge_inputs() -> dict[str, bytes]:
    tiny = shapes_picture()[::4, ::4][:80, :100]
    grey = cv2.cvtColor(shapes_picture(), cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([shapes_picture(200, 150), np.full((150, 200), 255, np.uint8)])
    rgba[:, :60, 3] = 0
    flat = np.full((200, 300, 3), (90, 140, 200), np.uint8)
    return {
        "tiny": encode(np.ascontiguousarray(tiny)),
        "grey": encode(grey),
        "rgba": encode(rgba),
        "flat": encode(flat),
        "jpeg": encode(shapes_picture(), "JPEG"),
        "grey16": encode(grey.astype(np.uint16) * 257),  # 16-bit PNG, as from scanners
        "sliver": encode(np.full((500, 1, 3), (20, 90, 20), np.uint8)),
    }


def run_all(data: bytes) -> dict[str, Rendered]:
    return {
        "coloring": render_coloring(data, {"style": "bold"}),
        "upscale": render_upscale(data, {"factor": 2}),
        "filter": render_filter(data, {"filter": "cartoon"}),
    }


@pytest.mark.parametrize("case", ["tiny", "grey", "rgba", "flat", "jpeg", "grey16", "sliver"])
def test_edge_cases_render(case: str) -> None:
    data = edge_inputs()[case]
    source = decode(data)
    results = run_all(data)
    page = decode(results["coloring"].files[0].data)
    assert max(page.size) == 2000
    up = decode(results["upscale"].files[0].data)
    assert up.size == (source.size[0] * 2, source.size[1] * 2)
    filtered = decode(results["filter"].files[0].data)
    assert filtered.size == source.size
    if case == "rgba":  # transparency survives where it makes sense
        assert up.mode == "RGBA"
        assert np.asarray(up)[:, :100, 3].max() < 40
        assert np.asarray(up)[:, 140:, 3].min() > 200
        assert filtered.mode == "RGBA"
        assert np.asarray(filtered)[:, :60, 3].max() == 0
    if case == "grey16":  # rescaled to 8 bits, not clipped to white
        grey = cv2.cvtColor(shapes_picture(), cv2.COLOR_RGB2GRAY)
        assert np.asarray(up.convert("L")).mean() == pytest.approx(grey.mean(), abs=3)
        assert np.asarray(page.convert("L")).min() == 0
    if case == "flat":  # nothing to outline: only the frame, one big area
        ink = np.asarray(page.convert("L")) == 0
        assert cv2.connectedComponents((~ink).astype(np.uint8), connectivity=4)[0] - 1 == 1


def test_huge_input_is_refused_by_upscale_and_shrunk_by_the_others() -> None:
    huge = encode(np.full((4000, 6000, 3), (30, 120, 200), np.uint8))
    with pytest.raises(RenderError, match="capped at 8192 px"):  # 24 MP already: no room to enlarge
        render_upscale(huge, {"factor": 2})
    page = decode(render_coloring(huge, {}).files[0].data)
    assert page.size == (2000, 1333)
    filtered = decode(render_filter(huge, {"filter": "pencil"}).files[0].data)
    assert max(filtered.size) == 2560


def test_upscale_over_the_output_cap_enlarges_as_far_as_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real caps (8192 px, 24 MP) scaled down so the test stays fast; the code path is the same.
    monkeypatch.setattr(upscale, "MAX_OUTPUT_SIDE", 1000)
    monkeypatch.setattr(upscale, "MAX_OUTPUT_PIXELS", 400_000)
    rendered = render_upscale(encode(shapes_picture(400, 300)), {"factor": 4})  # 1600×1200 would be 1.9 MP
    up = decode(rendered.files[0].data)
    assert up.size[0] * up.size[1] <= 400_000
    assert up.size[0] > 700  # the largest enlargement the caps allow
    assert "capped" in rendered.meta
    rendered = render_upscale(encode(shapes_picture(400, 300)), {"factor": 2})  # 800×600 fits the side cap...
    assert decode(rendered.files[0].data).size == (730, 546)  # ...but not the pixel cap


# --- upscale


def test_upscale_beats_lanczos_on_a_test_picture() -> None:
    reference = shapes_picture(480, 360)
    cv2.putText(reference, "Easel 42", (30, 330), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 3, cv2.LINE_AA)
    for i in range(12):  # fine stripes
        cv2.line(reference, (20 + 8 * i, 20), (60 + 8 * i, 100), (255, 255, 255), 2, cv2.LINE_AA)
    for factor in (2, 4):
        low = cv2.resize(reference, (480 // factor, 360 // factor), interpolation=cv2.INTER_AREA)
        lanczos = cv2.resize(low, (480, 360), interpolation=cv2.INTER_LANCZOS4)
        ours = upscale_rgb(low, factor)
        assert psnr(ours, reference) > psnr(lanczos, reference) + 0.1, factor

        rendered = render_upscale(encode(low), {"factor": factor})
        assert rendered.files[0].label == "upscaled"
        assert np.array_equal(np.asarray(decode(rendered.files[0].data).convert("RGB")), ours)  # PNG: lossless


def test_upscale_refuses_bad_factor() -> None:
    for params in ({"factor": 3}, {"factor": "big"}, {"factor": 2, "mode": "x"}):
        with pytest.raises(RenderError):
            render_upscale(encode(shapes_picture(60, 40)), params)


def test_large_photo_upscale_is_jpeg() -> None:
    photo = cv2.resize(shapes_picture(), (1200, 900))
    photo = np.clip(photo + np.random.default_rng(3).normal(0, 12, photo.shape), 0, 255).astype(np.uint8)
    rendered = render_upscale(encode(photo, "JPEG"), {"factor": 2})
    assert rendered.files[0].filename.endswith(".jpg")
    assert decode(rendered.files[0].data).size == (2400, 1800)


# --- filters


@pytest.mark.parametrize("name", ["pencil", "watercolor", "oil", "cartoon", "posterize"])
def test_filters_change_the_picture_and_strength_matters(name: str) -> None:
    picture = shapes_picture()
    weak = np.asarray(decode(render_filter(encode(picture), {"filter": name, "strength": 0.2}).files[0].data))
    rendered = render_filter(encode(picture), {"filter": name, "strength": 1.0})
    assert rendered.files[0].label == "filtered"
    assert rendered.meta["filter"] == name
    strong = np.asarray(decode(rendered.files[0].data))
    assert weak.shape == strong.shape == picture.shape
    change_weak = np.abs(weak.astype(int) - picture).mean()
    change_strong = np.abs(strong.astype(int) - picture).mean()
    assert change_strong > 4
    assert change_strong > change_weak
    if name == "pencil":  # a grey sketch on white paper
        assert np.ptp(strong.astype(int), axis=2).max() == 0
        assert np.median(strong) > 200
    if name == "posterize":  # few tones per channel
        assert len(np.unique(strong[..., 0])) <= 2
        assert len(np.unique(weak[..., 0])) <= 8


def test_filter_options_are_validated() -> None:
    assert FilterOptions(filter="oil").strength == 0.6
    for params in ({"filter": "blur"}, {"filter": "oil", "strength": 1.5}, {"filter": "oil", "strength": 0.1}, {}):
        with pytest.raises(RenderError):
            render_filter(encode(shapes_picture(60, 40)), params)
