"""A palette as files painters and their tools open: CSV (spreadsheets) and GIMP/Inkscape/Krita GPL."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from bot.legend import Swatch


def palette_csv(
    swatches: Sequence[Swatch], coverage: Sequence[float] | None = None, regions: Sequence[int] | None = None
) -> bytes:
    """number, name, hex, r, g, b and, when given, the share of the picture (%) and the number of regions."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["number", "name", "hex", "r", "g", "b"]
    if coverage is not None:
        header.append("coverage_percent")
    if regions is not None:
        header.append("regions")
    writer.writerow(header)
    for index, swatch in enumerate(swatches):
        r, g, b = swatch.rgb
        row: list[str | int] = [swatch.number, swatch.name, swatch.code, r, g, b]
        if coverage is not None:
            row.append(f"{coverage[index]:.2f}")
        if regions is not None:
            row.append(regions[index])
        writer.writerow(row)
    return out.getvalue().encode()


def palette_gpl(swatches: Sequence[Swatch], *, name: str = "Easel paint by numbers") -> bytes:
    """A GIMP palette: one "r g b<TAB>number name" line per colour."""
    safe_name = " ".join(name.split()) or "Palette"
    lines = ["GIMP Palette", f"Name: {safe_name}", "Columns: 4", "#"]
    for swatch in swatches:
        r, g, b = swatch.rgb
        label = " ".join(f"{swatch.number} {swatch.name}".split())
        lines.append(f"{r:3d} {g:3d} {b:3d}\t{label}")
    return ("\n".join(lines) + "\n").encode()
