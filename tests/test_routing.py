"""Routing by what members want: which studio, the notes members get, fall-over Alternatives, the per-server
defaults kept in SQLite, the member's options per studio, masks, and signed result links."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot import result_links
from bot.errors import BadInput
from bot.providers.routing import NoStudio, Router, studios_for
from bot.storage.database import Database
from bot.storage.studios import StudioDefaults
from cogs.studio_options import (
    ImageOptions,
    fitted_mask,
    image_options_of,
    image_params,
    rectangle,
    rectangle_mask,
    upscale_params,
)

BOTH = {"imagine", "mimipanda"}


def test_studios_are_offered_in_order_and_only_when_on() -> None:
    assert studios_for("image", BOTH) == ["imagine", "mimipanda"]
    assert studios_for("image", {"mimipanda"}) == ["mimipanda"]
    assert studios_for("upscale", {"local", "mimipanda"}) == ["mimipanda", "local"]
    assert studios_for("edit", {"mimipanda"}) == []


def test_member_choice_then_server_default_then_first_enabled() -> None:
    router = Router(BOTH)
    first = router.route("image")
    assert (first.studio, first.feature, first.others, first.note, first.chosen_by) == (
        "imagine",
        "imagine_image",
        ("mimipanda",),
        None,
        "first",
    )
    server = router.route("image", server_default="mimipanda")
    assert (server.studio, server.feature, server.others, server.chosen_by) == (
        "mimipanda",
        "ai_image",
        ("imagine",),
        "server",
    )
    member = router.route("image", member_choice="imagine", server_default="mimipanda")
    assert (member.studio, member.chosen_by, member.note) == ("imagine", "member", None)


def test_a_wanted_studio_that_is_off_hands_over_with_a_note() -> None:
    router = Router({"mimipanda"})
    route = router.route("image", server_default="imagine")
    assert (route.studio, route.wanted, route.others) == ("mimipanda", "imagine", ())
    assert route.note == "ℹ️ Imagine (this server's default) is off in this Easel, so Mimi Panda is making this."
    chosen = router.route("upscale", member_choice="local")
    assert chosen.studio == "mimipanda"
    assert chosen.note is not None and "Easel's own studio (you chose) is off" in chosen.note
    with pytest.raises(NoStudio, match="edits"):
        router.route("edit")


def test_alternatives_leave_out_studios_the_options_do_not_fit() -> None:
    route = Router(BOTH).route("image")
    plain = ImageOptions(prompt="a red fox in the snow", aspect_ratio="3:2")
    alts = route.alternatives(lambda studio, _f: (image_params(studio, plain), 1))
    assert [(a.provider, a.feature, a.params, a.units) for a in alts] == [
        ("mimipanda", "ai_image", {"prompt": "a red fox in the snow", "aspect_ratio": "3x2"}, 1)
    ]
    styled = ImageOptions(prompt="a red fox in the snow", style="anime")

    def build(studio: str, _feature: str) -> tuple[dict[str, object], int] | None:
        try:
            return image_params(studio, styled), 1
        except BadInput:
            return None

    assert route.alternatives(build) == []


def test_each_studio_refuses_options_it_does_not_have() -> None:
    anime = ImageOptions(prompt="a fox", style="anime")
    assert image_params("imagine", anime) == {"operation": "generate", "prompt": "a fox", "style": "anime"}
    with pytest.raises(BadInput, match="Mimi Panda has no style option; pick Imagine or leave style empty"):
        image_params("mimipanda", anime)
    with pytest.raises(BadInput, match="Mimi Panda has no aspect ratio `16:9`; its shapes are 1:1, 2:3"):
        image_params("mimipanda", ImageOptions(prompt="a fox", aspect_ratio="16:9"))
    with pytest.raises(BadInput, match="Imagine has no aspect ratio `4:5`"):
        image_params("imagine", ImageOptions(prompt="a fox", aspect_ratio="4:5"))
    with pytest.raises(BadInput, match="cannot make transparent"):
        image_params("mimipanda", ImageOptions(prompt="a fox", transparent=True))
    with pytest.raises(BadInput, match="seed"):
        image_params("mimipanda", ImageOptions(prompt="a fox", seed=3))
    clear = image_params("imagine", ImageOptions(prompt="a fox", transparent=True, seed=3))
    assert clear == {"operation": "transparent", "prompt": "a fox", "seed": 3}
    with pytest.raises(BadInput, match="`prompt`"):
        image_params("mimipanda", ImageOptions(prompt="x" * 700))


def test_a_job_gives_back_the_options_it_was_made_with() -> None:
    assert image_options_of("ai_image", {"prompt": "a fox", "aspect_ratio": "2x3"}) == ImageOptions(
        prompt="a fox", aspect_ratio="2:3"
    )
    made = {"operation": "transparent", "prompt": "a cup", "aspect_ratio": "3:4", "seed": 9}
    assert image_options_of("imagine_image", made) == ImageOptions(
        prompt="a cup", aspect_ratio="3:4", seed=9, transparent=True
    )


def test_upscale_parameters_per_studio() -> None:
    assert upscale_params("mimipanda", 4, 800, 600) == ({"upscale": 4}, None)
    params, note = upscale_params("mimipanda", 4, 1200, 300)
    assert params == {"upscale": 2} and note is not None and "**2x**" in note
    assert upscale_params("imagine", None, 800, 600) == ({}, None)
    with pytest.raises(BadInput, match="Imagine enhances at its own size"):
        upscale_params("imagine", 4, 800, 600)
    assert upscale_params("local", None, 10, 10) == ({"factor": 2}, None)


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_rectangle_masks_are_checked_and_drawn_in_percent() -> None:
    assert rectangle(None, None, None, None) is None
    with pytest.raises(BadInput, match="missing: top, height"):
        rectangle(10, None, 20, None)
    with pytest.raises(BadInput, match="left \\+ width is 110%"):
        rectangle(60, 0, 50, 10)
    box = rectangle(25, 50, 50, 50)
    assert box is not None
    mask = _image(rectangle_mask(box, 200, 100))
    assert mask.size == (200, 100) and mask.mode == "L"
    assert mask.getpixel((49, 60)) == 0 and mask.getpixel((50, 50)) == 255 and mask.getpixel((149, 99)) == 255
    assert mask.getpixel((150, 99)) == 0 and mask.getpixel((100, 49)) == 0


def test_a_mask_of_another_size_is_resized_to_the_picture() -> None:
    drawn = Image.new("RGB", (50, 50), "black")
    drawn.paste((255, 255, 255), (0, 0, 25, 50))  # left half white
    out = io.BytesIO()
    drawn.save(out, "PNG")
    png, resized, anything = fitted_mask(out.getvalue(), 120, 80)
    mask = _image(png)
    assert (resized, anything, mask.size) == (True, True, (120, 80))
    assert mask.getpixel((10, 40)) == 255 and mask.getpixel((110, 40)) == 0
    empty = io.BytesIO()
    Image.new("L", (120, 80), 0).save(empty, "PNG")
    assert fitted_mask(empty.getvalue(), 120, 80)[1:] == (False, False)
    painted = Image.new("RGBA", (120, 80), (0, 0, 0, 0))  # painted in red on a transparent layer
    painted.paste((255, 0, 0, 255), (60, 0, 120, 80))
    layer = io.BytesIO()
    painted.save(layer, "PNG")
    assert _image(fitted_mask(layer.getvalue(), 120, 80)[0]).getpixel((100, 10)) == 255


async def test_server_defaults_and_the_link_key_persist(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "easel.db")
    try:
        defaults = StudioDefaults(db)
        assert await defaults.get(1, "image") is None
        await defaults.set(1, "image", "mimipanda", 42)
        await defaults.set(1, "image", "imagine", 43)
        await defaults.set(1, "upscale", "mimipanda", 43)
        assert await defaults.get(1, "image") == "imagine"
        assert await defaults.get(2, "image") is None and await defaults.get(None, "image") is None
        assert await defaults.all(1) == {"image": "imagine", "upscale": "mimipanda"}
        assert await defaults.clear(1, "image") and not await defaults.clear(1, "image")
        key = await result_links.signing_key(db, None)
        assert len(key) >= 32 and await result_links.signing_key(db, None) == key
        assert await result_links.signing_key(db, "configured") == b"configured"
    finally:
        await db.close()


def test_signed_links_check_every_part_and_expire() -> None:
    key = b"k" * 32
    sig = result_links.sign(key, "abc", 0, 1000)
    assert result_links.valid(key, "abc", 0, 1000, sig, now=999)
    assert not result_links.valid(key, "abc", 0, 1000, sig, now=1000)
    assert not result_links.valid(key, "abc", 1, 1000, sig, now=0)
    assert not result_links.valid(key, "abd", 0, 1000, sig, now=0)
    assert not result_links.valid(key, "abc", 0, 2000, sig, now=0)
    assert not result_links.valid(b"other", "abc", 0, 1000, sig, now=0)
    url = result_links.link("https://easel.example/", key, "abc", 2, 1000)
    assert url == f"https://easel.example/results/abc/2?e=1000&s={result_links.sign(key, 'abc', 2, 1000)}"
