"""A printable page: one image centred on an A4 or Letter sheet, in the sheet's orientation that fits it best."""

from __future__ import annotations

import io
from typing import Literal

from PIL import Image
from reportlab.lib.pagesizes import A4, LETTER, landscape, portrait
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

Paper = Literal["a4", "letter"]
MARGIN_PT = 28.35  # 1 cm: inside the unprintable border of most home printers

PAPER_SIZES: dict[str, tuple[float, float]] = {"a4": A4, "letter": LETTER}


def page_size(paper: Paper, image_width: int, image_height: int) -> tuple[float, float]:
    """Page size in points, landscape for wide images."""
    size = PAPER_SIZES[paper]
    width, height = landscape(size) if image_width > image_height else portrait(size)
    return float(width), float(height)


def printed_scale(paper: Paper, image_width: int, image_height: int) -> float:
    """Millimetres per image pixel once the image is fitted inside the page margins."""
    page_w, page_h = page_size(paper, image_width, image_height)
    points_per_px = min((page_w - 2 * MARGIN_PT) / image_width, (page_h - 2 * MARGIN_PT) / image_height)
    return points_per_px * 25.4 / 72.0


def image_page_pdf(image: Image.Image, paper: Paper, *, title: str = "Easel") -> bytes:
    """PDF of one page showing `image` as large as the margins allow, centred, aspect kept."""
    width, height = image.size
    page_w, page_h = page_size(paper, width, height)
    scale = min((page_w - 2 * MARGIN_PT) / width, (page_h - 2 * MARGIN_PT) / height)
    draw_w, draw_h = width * scale, height * scale
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(page_w, page_h), pageCompression=1)
    pdf.setTitle(title)
    pdf.drawImage(ImageReader(image), (page_w - draw_w) / 2, (page_h - draw_h) / 2, draw_w, draw_h)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
