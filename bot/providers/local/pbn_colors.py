"""Colour science for paint-by-numbers: sRGB <-> CIELAB and human names for palette colours."""

from __future__ import annotations

import cv2
import numpy as np

# A compact naming table (sRGB); a palette colour takes the name of its nearest entry in CIELAB. Names a
# painter recognises, spread evenly enough over the gamut that neighbours in a palette rarely share one.
COLOR_NAMES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("White", (255, 255, 255)),
    ("Snow", (250, 246, 240)),
    ("Ivory", (255, 250, 225)),
    ("Cream", (253, 240, 200)),
    ("Beige", (235, 220, 185)),
    ("Linen", (240, 228, 214)),
    ("Wheat", (245, 222, 179)),
    ("Sand", (214, 189, 146)),
    ("Tan", (210, 180, 140)),
    ("Khaki", (195, 176, 120)),
    ("Camel", (193, 154, 107)),
    ("Light grey", (211, 211, 211)),
    ("Silver", (192, 192, 192)),
    ("Grey", (150, 150, 150)),
    ("Warm grey", (150, 140, 130)),
    ("Cool grey", (140, 148, 160)),
    ("Slate grey", (112, 128, 144)),
    ("Dark grey", (90, 90, 90)),
    ("Charcoal", (54, 57, 62)),
    ("Graphite", (40, 40, 40)),
    ("Black", (12, 12, 12)),
    ("Pale pink", (250, 218, 221)),
    ("Pink", (255, 182, 193)),
    ("Rose", (230, 120, 150)),
    ("Hot pink", (240, 90, 160)),
    ("Magenta", (202, 31, 123)),
    ("Fuchsia", (220, 60, 200)),
    ("Raspberry", (180, 30, 80)),
    ("Crimson", (200, 20, 50)),
    ("Red", (220, 30, 30)),
    ("Scarlet", (240, 60, 30)),
    ("Cherry", (150, 10, 30)),
    ("Wine", (110, 25, 45)),
    ("Maroon", (120, 20, 20)),
    ("Burgundy", (90, 10, 30)),
    ("Salmon", (250, 128, 114)),
    ("Coral", (255, 127, 80)),
    ("Peach", (255, 203, 164)),
    ("Apricot", (251, 180, 130)),
    ("Light orange", (255, 170, 90)),
    ("Orange", (250, 130, 20)),
    ("Tangerine", (240, 110, 0)),
    ("Burnt orange", (204, 85, 0)),
    ("Rust", (170, 65, 20)),
    ("Terracotta", (200, 100, 70)),
    ("Brick", (160, 60, 45)),
    ("Sienna", (160, 82, 45)),
    ("Copper", (184, 115, 51)),
    ("Ochre", (204, 140, 40)),
    ("Mustard", (225, 180, 50)),
    ("Gold", (240, 190, 20)),
    ("Amber", (255, 191, 0)),
    ("Lemon", (255, 240, 80)),
    ("Yellow", (255, 225, 40)),
    ("Pale yellow", (255, 245, 160)),
    ("Butter", (250, 230, 130)),
    ("Brown", (130, 80, 40)),
    ("Chocolate", (90, 55, 30)),
    ("Dark brown", (60, 38, 22)),
    ("Coffee", (110, 75, 55)),
    ("Taupe", (140, 120, 105)),
    ("Mocha", (150, 110, 85)),
    ("Caramel", (175, 111, 50)),
    ("Light brown", (180, 135, 95)),
    ("Olive", (128, 128, 0)),
    ("Dark olive", (85, 90, 40)),
    ("Olive drab", (107, 142, 35)),
    ("Moss", (120, 135, 70)),
    ("Khaki green", (150, 150, 90)),
    ("Sage", (160, 175, 140)),
    ("Pistachio", (180, 210, 140)),
    ("Lime", (170, 220, 50)),
    ("Chartreuse", (200, 230, 60)),
    ("Light green", (150, 220, 140)),
    ("Mint", (170, 240, 200)),
    ("Grass green", (90, 170, 50)),
    ("Green", (40, 150, 60)),
    ("Emerald", (20, 160, 100)),
    ("Kelly green", (40, 130, 40)),
    ("Forest green", (34, 100, 34)),
    ("Dark green", (20, 65, 35)),
    ("Pine", (25, 80, 60)),
    ("Bottle green", (10, 70, 50)),
    ("Jade", (0, 168, 120)),
    ("Sea green", (46, 139, 87)),
    ("Seafoam", (150, 220, 190)),
    ("Aquamarine", (120, 220, 200)),
    ("Turquoise", (60, 200, 200)),
    ("Teal", (0, 128, 128)),
    ("Dark teal", (0, 80, 85)),
    ("Cyan", (40, 200, 230)),
    ("Pale blue", (200, 225, 245)),
    ("Sky blue", (135, 195, 235)),
    ("Light blue", (165, 200, 230)),
    ("Powder blue", (176, 210, 225)),
    ("Baby blue", (140, 180, 220)),
    ("Steel blue", (70, 130, 180)),
    ("Cornflower", (100, 149, 237)),
    ("Azure", (30, 130, 230)),
    ("Cerulean", (0, 123, 167)),
    ("Blue", (30, 70, 200)),
    ("Royal blue", (50, 90, 210)),
    ("Cobalt", (0, 71, 171)),
    ("Ultramarine", (30, 40, 160)),
    ("Denim", (60, 90, 140)),
    ("Petrol", (20, 80, 110)),
    ("Navy", (20, 30, 90)),
    ("Midnight blue", (25, 25, 60)),
    ("Indigo", (60, 20, 120)),
    ("Slate blue", (100, 100, 180)),
    ("Periwinkle", (170, 170, 230)),
    ("Lavender", (200, 180, 230)),
    ("Lilac", (190, 160, 210)),
    ("Mauve", (170, 120, 150)),
    ("Orchid", (200, 110, 200)),
    ("Violet", (140, 70, 200)),
    ("Purple", (110, 40, 140)),
    ("Plum", (110, 40, 90)),
    ("Aubergine", (60, 20, 50)),
    ("Dusty rose", (190, 130, 130)),
    ("Blush", (225, 170, 160)),
    ("Skin", (235, 195, 165)),
    ("Light skin", (245, 215, 195)),
    ("Rosewood", (100, 40, 40)),
)


def image_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of an H×W×3 uint8 sRGB picture, float32 (L 0..100)."""
    lab: np.ndarray = cv2.cvtColor(rgb.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)
    return lab


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB of sRGB colours in 0..255, any shape (..., 3)."""
    values = np.asarray(rgb, dtype=np.uint8).reshape(-1, 1, 3)
    return image_to_lab(values).reshape(np.shape(rgb))


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """sRGB uint8 of CIELAB colours, any shape (..., 3), clipped to the gamut."""
    values = np.asarray(lab, dtype=np.float32).reshape(-1, 1, 3)
    rgb = cv2.cvtColor(values, cv2.COLOR_Lab2RGB)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8).reshape(np.shape(lab))


_NAME_LAB = srgb_to_lab(np.array([rgb for _, rgb in COLOR_NAMES], dtype=np.uint8))


def color_names(rgbs: np.ndarray) -> list[str]:
    """A name per colour (rows of sRGB), unique within the list: a repeated name gets "light"/"dark" or a
    number, so a painter never sees two swatches called the same."""
    labs = srgb_to_lab(np.asarray(rgbs, dtype=np.uint8).reshape(-1, 3))
    distances = ((labs[:, None, :] - _NAME_LAB[None, :, :]) ** 2).sum(axis=2)
    names = [COLOR_NAMES[int(i)][0] for i in distances.argmin(axis=1)]
    out: list[str] = []
    for index, name in enumerate(names):
        same = [j for j, other in enumerate(names) if other == name]
        if len(same) == 1:
            out.append(name)
            continue
        ranked = sorted(same, key=lambda j: -float(labs[j, 0]))  # lightest first
        position = ranked.index(index)
        if len(same) == 2 and name.split()[0] not in ("Light", "Dark", "Pale"):
            base = name[0].lower() + name[1:]
            out.append(f"Light {base}" if position == 0 else f"Dark {base}")
        else:
            out.append(f"{name} {position + 1}")
    return out
