"""Printable PDFs for local renderers: vector pages of outlines and text at a real size, and picture pages.

Coordinates are in mm with the origin at the top left (as in SVG and images); reportlab's bottom-left
origin stays in here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas as pdf_canvas


@dataclass(frozen=True)
class PdfText:
    x_mm: float  # centre
    baseline_mm: float
    size_mm: float
    text: str


@dataclass(frozen=True)
class VectorPage:
    width_mm: float
    height_mm: float
    rings: Sequence[np.ndarray] = ()  # closed polylines, (x, y) in mm
    texts: Sequence[PdfText] = ()
    line_mm: float = 0.2
    line_gray: float = 0.5  # 0 black .. 1 white
    text_gray: float = 0.25
    font: str = "Helvetica"


@dataclass(frozen=True)
class ImagePage:
    width_mm: float
    height_mm: float
    png: bytes
    margin_mm: float = 10.0


@dataclass(frozen=True)
class PdfInfo:
    title: str = ""
    author: str = "Easel"


def _vector_page(c: pdf_canvas.Canvas, page: VectorPage) -> None:
    height = page.height_mm
    c.setLineWidth(page.line_mm * mm)
    c.setLineJoin(1)
    c.setStrokeGray(page.line_gray)
    if page.rings:
        path = c.beginPath()
        for ring in page.rings:
            x, y = ring[0]
            path.moveTo(float(x) * mm, (height - float(y)) * mm)
            for x, y in ring[1:]:
                path.lineTo(float(x) * mm, (height - float(y)) * mm)
            path.close()
        c.drawPath(path, stroke=1, fill=0)
    c.setFillGray(page.text_gray)
    for text in page.texts:
        c.setFont(page.font, text.size_mm * mm)
        c.drawCentredString(text.x_mm * mm, (height - text.baseline_mm) * mm, text.text)


def _image_page(c: pdf_canvas.Canvas, page: ImagePage) -> None:
    reader = ImageReader(io.BytesIO(page.png))
    pixel_width, pixel_height = reader.getSize()
    room_w = page.width_mm - 2 * page.margin_mm
    room_h = page.height_mm - 2 * page.margin_mm
    scale = min(room_w / pixel_width, room_h / pixel_height)
    scale = min(scale, 25.4 / 96)  # never blown up past 96 dpi: a legend stays a legend
    width, height = pixel_width * scale, pixel_height * scale
    c.drawImage(reader, page.margin_mm * mm, (page.height_mm - page.margin_mm - height) * mm, width * mm, height * mm)


def build_pdf(pages: Sequence[VectorPage | ImagePage], info: PdfInfo | None = None) -> bytes:
    """One PDF holding the pages in order, each at its own size."""
    out = io.BytesIO()
    c = pdf_canvas.Canvas(out, pageCompression=1, invariant=1)
    if info is not None:
        c.setTitle(info.title)
        c.setAuthor(info.author)
    for page in pages:
        c.setPageSize((page.width_mm * mm, page.height_mm * mm))
        if isinstance(page, VectorPage):
            _vector_page(c, page)
        else:
            _image_page(c, page)
        c.showPage()
    c.save()
    return out.getvalue()
