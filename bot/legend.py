"""A paint-by-numbers palette legend: number, swatch, name and hex code, as an image and as text.

Rendering is CPU work: `render_legend_async` runs it in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

ROWS_PER_COLUMN = 25
ROW_HEIGHT = 30
COLUMN_WIDTH = 350
MARGIN = 16
TITLE_HEIGHT = 40
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MUTED = (110, 110, 110)


@dataclass(frozen=True)
class Swatch:
    number: int
    name: str
    hex: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        value = self.hex.lstrip("#")
        if re.fullmatch(r"[0-9A-Fa-f]{6}", value):
            return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
        # A palette code that is not a hex colour: a stable stand-in, so the row still has a swatch.
        digest = hashlib.sha256(value.encode()).digest()
        return digest[0], digest[1], digest[2]

    @property
    def code(self) -> str:
        value = self.hex.lstrip("#")
        return f"#{value.upper()}" if re.fullmatch(r"[0-9A-Fa-f]{6}", value) else self.hex

    def line(self) -> str:
        name = self.name.strip() or "unnamed"
        return f"`{self.number:>2}` {name} · {self.code}"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def render_legend(swatches: Sequence[Swatch], *, title: str = "Palette") -> bytes:
    """A PNG: the title, then one row per colour (number, swatch, name, hex), in columns of at most 25."""
    count = max(1, len(swatches))
    columns = math.ceil(count / ROWS_PER_COLUMN)
    rows = math.ceil(count / columns)  # balanced: 30 colours are two columns of 15
    width = MARGIN * 2 + columns * COLUMN_WIDTH
    height = MARGIN * 2 + TITLE_HEIGHT + rows * ROW_HEIGHT
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    title_font, font, small = _font(22), _font(16), _font(13)
    heading = f"{title}: {len(swatches)} colour{'s' if len(swatches) != 1 else ''}"
    draw.text((MARGIN, MARGIN), _fit(draw, heading, title_font, width - 2 * MARGIN), fill=INK, font=title_font)
    for index, swatch in enumerate(swatches):
        column, row = divmod(index, rows)
        x = MARGIN + column * COLUMN_WIDTH
        y = MARGIN + TITLE_HEIGHT + row * ROW_HEIGHT
        middle = y + ROW_HEIGHT // 2
        draw.text((x + 34, middle), str(swatch.number), fill=INK, font=font, anchor="rm")
        draw.rectangle((x + 42, y + 4, x + 82, y + ROW_HEIGHT - 6), fill=swatch.rgb, outline=INK, width=1)
        name = _fit(draw, swatch.name.strip() or "unnamed", font, COLUMN_WIDTH - 180)
        draw.text((x + 92, middle), name, fill=INK, font=font, anchor="lm")
        draw.text((x + COLUMN_WIDTH - 14, middle), swatch.code, fill=MUTED, font=small, anchor="rm")
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


async def render_legend_async(swatches: Sequence[Swatch], *, title: str = "Palette") -> bytes:
    return await asyncio.to_thread(render_legend, swatches, title=title)


def legend_text(swatches: Sequence[Swatch], *, budget: int) -> tuple[str, bool]:
    """The legend as message text within `budget` characters; the flag says whether every colour fits
    (if not, the text ends by saying how many more there are)."""
    lines = [swatch.line() for swatch in swatches]
    full = "\n".join(lines)
    if len(full) <= budget:
        return full, True
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        more = len(lines) - index
        tail = f"… and {more} more: see the legend image and the attached legend file."
        if used + len(line) + 1 + len(tail) > budget:
            return "\n".join([*kept, tail]), False
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept), True  # pragma: no cover - the full text would have fit


def legend_file(swatches: Sequence[Swatch]) -> bytes:
    """The whole legend as plain text (number, name, hex), for palettes too long for a message."""
    width = max((len(s.name.strip() or "unnamed") for s in swatches), default=0)
    lines = [f"{s.number:>3}  {(s.name.strip() or 'unnamed'):<{width}}  {s.code}" for s in swatches]
    return ("\n".join(lines) + "\n").encode()
