"""Paint-by-numbers, computed here: a photo becomes a numbered template, a coloured preview, a legend and
printable files (SVG, PDF at the canvas size, palette CSV and GPL).

Every region is big enough to paint at the printed size and holds its number, clear of its border, at a
size that reads on paper; colours are found in CIELAB and named. Pure function of (bytes, options).
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.legend import Swatch, legend_file, legend_text, render_legend
from bot.providers.local.common import Output, Rendered, RenderError, open_capped, to_rgb_array
from bot.providers.local.palette_files import palette_csv, palette_gpl
from bot.providers.local.pbn_colors import color_names
from bot.providers.local.pbn_labels import DIGIT_HEIGHT_EM, LabelGeometry, place_labels
from bot.providers.local.pbn_render import BORDER_MM, Layout, preview_png, region_outlines, template_png, template_svg
from bot.providers.local.pbn_segment import SegmentParams, inscribed_diameters, segment
from bot.providers.local.pdf import ImagePage, PdfInfo, PdfText, VectorPage, build_pdf

LEGEND_TEXT_BUDGET = 1500
# Per level of detail: smallest region (largest inscribed circle, mm) and majority smoothing (sigma, mm).
DETAIL_MIN_MM = {"low": 4.0, "normal": 2.1, "high": 2.05}
DETAIL_SMOOTH_MM = {"low": 1.1, "normal": 0.75, "high": 0.5}
MM_PER_INCH = 25.4


class PbnOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    colors: int = Field(16, ge=7, le=100)
    detail: Literal["low", "normal", "high"] = "normal"
    min_area_mm: float | None = Field(None, ge=1.0, le=30.0)
    canvas_inches: tuple[float, float] | None = None
    crop: bool = False
    working_size: int = Field(1024, ge=256, le=2048)
    print_long_side_mm: float = Field(270.0, ge=50.0, le=1200.0)

    @field_validator("canvas_inches")
    @classmethod
    def _canvas_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not all(4 <= side <= 45 for side in value):
            raise ValueError("each canvas side must be between 4 and 45 inches")
        return value


def _options(params: dict[str, Any]) -> PbnOptions:
    try:
        return PbnOptions.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors())
        raise RenderError(f"those paint-by-numbers options are not valid ({problems})") from exc


def _canvas(rgb: np.ndarray, options: PbnOptions) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """The picture (cropped if asked), the canvas size and the picture's size on it, in mm."""
    height, width = rgb.shape[:2]
    if options.canvas_inches is None:
        scale = options.print_long_side_mm / max(width, height)
        return rgb, (width * scale, height * scale), (width * scale, height * scale)
    a, b = (side * MM_PER_INCH for side in options.canvas_inches)
    # The canvas turns to the picture's orientation; a square picture keeps the canvas as given.
    canvas_w, canvas_h = (max(a, b), min(a, b)) if width > height else (min(a, b), max(a, b))
    if width == height:
        canvas_w, canvas_h = a, b
    if options.crop:
        target = canvas_w / canvas_h
        if width / height > target:
            keep = max(1, round(height * target))
            left = (width - keep) // 2
            rgb = rgb[:, left : left + keep]
        else:
            keep = max(1, round(width / target))
            top = (height - keep) // 2
            rgb = rgb[top : top + keep]
        height, width = rgb.shape[:2]
    scale = min(canvas_w / width, canvas_h / height)
    return rgb, (canvas_w, canvas_h), (width * scale, height * scale)


def _rgb(image: Image.Image) -> np.ndarray:
    """RGB uint8 (deep greyscale rescaled to 8 bits by to_rgb_array)."""
    return to_rgb_array(image)


def _working(rgb: np.ndarray, long_side: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = long_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=interpolation))


def render_pbn(data: bytes, params: dict[str, Any]) -> Rendered:
    """The paint-by-numbers kit for one picture."""
    options = _options(params)
    cv2.setNumThreads(1)  # one worker process, one core
    image = open_capped(data, work_side=options.working_size)
    rgb, canvas_mm, picture_mm = _canvas(_rgb(image), options)
    rgb = _working(rgb, options.working_size)
    height, width = rgb.shape[:2]
    mm_per_px = picture_mm[0] / width
    geometry = LabelGeometry(mm_per_px=mm_per_px)
    min_mm = options.min_area_mm if options.min_area_mm is not None else DETAIL_MIN_MM[options.detail]
    params_ = SegmentParams(options.colors, mm_per_px, min_mm, DETAIL_SMOOTH_MM[options.detail], geometry)
    seg = segment(rgb, params_)
    _, distance = inscribed_diameters(seg.regions, seg.region_count)
    labels = place_labels(seg.regions, seg.region_class, distance, geometry)
    outlines = region_outlines(seg.regions, seg.region_count)

    names = color_names(seg.palette_rgb)
    swatches = [
        Swatch(k + 1, names[k], "#{:02X}{:02X}{:02X}".format(*(int(v) for v in rgb_)))
        for k, rgb_ in enumerate(seg.palette_rgb)
    ]
    coverage = np.bincount(seg.classes.ravel(), minlength=len(swatches)) / seg.classes.size * 100
    region_counts = np.bincount(seg.region_class, minlength=len(swatches))
    offset = ((canvas_mm[0] - picture_mm[0]) / 2, (canvas_mm[1] - picture_mm[1]) / 2)
    layout = Layout(canvas_mm, offset, mm_per_px)
    legend_png = render_legend(swatches, title="Paint by numbers")
    pdf = build_pdf(
        [_template_page(outlines, labels, layout), ImagePage(canvas_mm[0], canvas_mm[1], legend_png)],
        PdfInfo(title="Paint by numbers"),
    )
    files = [
        Output("pbn-template.png", template_png(outlines, labels, (height, width), layout), label="template"),
        Output("pbn-preview.png", preview_png(seg.classes, seg.palette_rgb), label="preview"),
        Output("pbn-legend.png", legend_png, label="legend"),
        Output(
            "pbn-template.svg",
            template_svg(outlines, seg.region_class, labels, [s.code for s in swatches], layout),
            kind="file",
            label="svg",
            send=False,
        ),
        Output("pbn-template.pdf", pdf, kind="file", label="pdf", send=False),
        Output(
            "pbn-palette.csv",
            palette_csv(swatches, coverage.tolist(), region_counts.tolist()),
            kind="file",
            label="csv",
            send=False,
        ),
        Output("pbn-palette.gpl", palette_gpl(swatches), kind="file", label="gpl", send=False),
    ]
    body, complete = legend_text(swatches, budget=LEGEND_TEXT_BUDGET)
    if not complete:
        files.append(Output("pbn-legend.txt", legend_file(swatches), kind="file", label="legend-text", send=False))
    meta = {
        "colors": len(swatches),
        "regions": seg.region_count,
        "canvas_mm": f"{canvas_mm[0]:.0f}×{canvas_mm[1]:.0f}",
        "working_px": f"{width}×{height}",
        "crowded_labels": sum(1 for spot in labels if not spot.fits),
    }
    return Rendered(files=files, text=f"**Palette** ({len(swatches)} colours)\n{body}", meta=meta)


def _template_page(outlines: list[list[np.ndarray]], labels: list[Any], layout: Layout) -> VectorPage:
    s = layout.mm_per_px
    dx, dy = layout.offset_mm
    rings = [ring * s + (dx, dy) for region in outlines for ring in region]
    texts = [
        PdfText(spot.x * s + dx, spot.y * s + dy + DIGIT_HEIGHT_EM * spot.font_mm / 2, spot.font_mm, str(spot.number))
        for spot in labels
    ]
    return VectorPage(layout.canvas_mm[0], layout.canvas_mm[1], rings, texts, line_mm=BORDER_MM)
