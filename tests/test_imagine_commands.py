"""/imagine, /upscale, /edit, /video and /studio-admin end to end: the real bot through the Discord emulator,
against the fake Imagine and the fake Mimi Panda as real HTTP servers."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from bot import result_links
from bot.jobs.engine import ProviderLimits
from bot.jobs.model import JobStatus
from bot.providers.base import Adapter
from bot.providers.imagine import ImagineAdapter
from bot.providers.mimipanda import MimiPandaAdapter
from bot.settings import Settings
from tests.conftest import EaselFactory
from tests.emulator import Attachment, DiscordEmulator, Interaction, Member
from tests.fakes import images
from tests.fakes.imagine import FakeImagine
from tests.fakes.mimipanda import FakeMimiPanda
from tests.fakes.studio import FakeStudio
from tests.fakes.studio_adapters import PollStudio
from tests.fakes.video import make_mp4
from tests.harness import Easel, eventually
from tests.test_mimipanda_commands import attached, custom_ids, footer, open_image, refusal, started_job

MP_TOKEN, IM_KEY = "mp-token", "vk-imagine-key"
FAST = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01)


@pytest.fixture
async def imagine() -> AsyncIterator[FakeImagine]:
    async with FakeImagine(api_key=IM_KEY) as server:
        server.video_seconds = 0.05
        yield server


@pytest.fixture
async def mimi() -> AsyncIterator[FakeMimiPanda]:
    server = FakeMimiPanda(token=MP_TOKEN)
    server.queue_seconds, server.processing_seconds = 0.02, 0.04
    await server.start()
    yield server
    await server.stop()


def adapters(imagine: FakeImagine | None, mimi: FakeMimiPanda | None) -> Any:
    def build(settings: Settings, client: httpx.AsyncClient) -> dict[str, Adapter]:
        made: dict[str, Adapter] = {}
        if imagine is not None:
            made["imagine"] = ImagineAdapter(client, base_url=imagine.base_url, api_key=IM_KEY, first_poll_s=0.02)
        if mimi is not None:
            made["mimipanda"] = MimiPandaAdapter(
                client, base_url=mimi.base_url, token=MP_TOKEN, first_poll_s=0.02, poll_s=None
            )
        return made

    return build


async def start(
    factory: EaselFactory, imagine: FakeImagine | None, mimi: FakeMimiPanda | None, **settings: Any
) -> Easel:
    keys: dict[str, Any] = {}
    if imagine is not None:
        keys.update(imagine_api_key=IM_KEY, imagine_base_url=imagine.base_url)
    if mimi is not None:
        keys.update(mimipanda_api_token=MP_TOKEN, mimipanda_base_url=mimi.base_url)
    return await factory(
        **keys,
        **settings,
        adapter_factory=adapters(imagine, mimi),
        provider_limits_override={"imagine": FAST, "mimipanda": FAST},
    )


@pytest.fixture
async def easel(easel_factory: EaselFactory, imagine: FakeImagine, mimi: FakeMimiPanda) -> Easel:
    return await start(easel_factory, imagine, mimi)


# --- helpers -------------------------------------------------------------------------------------------


async def credits(easel: Easel, emulator: DiscordEmulator, member: Member) -> int:
    balance = await easel.bot.ledger.balance(emulator.guild_id, member.id, [])  # type: ignore[attr-defined]
    return int(balance.available)


async def delivered(ix: Interaction, job_id: str) -> dict[str, Any]:
    return await ix.wait_followup(lambda m: job_id in footer(m), timeout=15)


async def finished(easel: Easel, job_id: str) -> Any:
    async def ended() -> Any:
        job = await easel.bot.jobs.store.get(job_id)
        return job if job is not None and job.status.final else None

    return await eventually(ended, within=15)


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def picture(width: int = 160, height: int = 120) -> Attachment:
    return Attachment(images.png(width, height), "photo.png", "image/png")


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {c["custom_id"]: c.get("label", "") for row in message.get("components", []) for c in row["components"]}


def has_alpha(image: Image.Image) -> bool:
    """Some pixels see-through (palette pictures with a transparent colour too)."""
    rgba = image.convert("RGBA")
    return rgba.getchannel("A").getextrema()[0] < 255


async def nothing_made(easel: Easel, emulator: DiscordEmulator, member: Member, *fakes: Any) -> None:
    assert await easel.bot.jobs.store.for_member(emulator.guild_id, member.id) == []
    for fake in fakes:
        assert (fake.calls() if isinstance(fake, FakeImagine) else fake.creates()) == []


# --- registration: options follow the enabled studios ----------------------------------------------------


async def test_commands_and_their_options_follow_the_enabled_studios(
    emulator: DiscordEmulator, easel_factory: EaselFactory, imagine: FakeImagine, mimi: FakeMimiPanda
) -> None:
    await start(easel_factory, None, mimi)
    commands = {c["name"]: c for c in emulator.commands}
    assert {"imagine", "upscale", "ai-image", "studio-admin"} <= set(commands)
    assert not {"edit", "video"} & set(commands), "no enabled studio edits or makes videos"
    assert [o["name"] for o in commands["imagine"]["options"]] == ["prompt", "aspect_ratio"]
    assert [o["name"] for o in commands["upscale"]["options"]] == ["image", "factor"]

    await start(easel_factory, imagine, mimi)
    commands = {c["name"]: c for c in emulator.commands}
    options = {o["name"]: o for o in commands["imagine"]["options"]}
    assert list(options) == ["prompt", "studio", "style", "aspect_ratio", "seed", "transparent"]
    assert [c["value"] for c in options["studio"]["choices"]] == ["imagine", "mimipanda"]
    assert options["style"]["autocomplete"] and options["aspect_ratio"]["autocomplete"]
    assert [o["name"] for o in commands["upscale"]["options"]] == ["image", "factor", "studio"]
    assert sorted(o["name"] for o in commands["edit"]["options"]) == [
        "background",
        "erase",
        "fill",
        "remove-background",
    ]
    fill = next(o for o in commands["edit"]["options"] if o["name"] == "fill")
    assert [o["name"] for o in fill["options"]] == ["prompt", "image", "mask", "left", "top", "width", "height"]

    def descriptions(entries: list[dict[str, Any]]) -> list[str]:
        return [d for e in entries for d in [e["description"], *descriptions(e.get("options") or [])]]

    ours = [commands[name] for name in ("imagine", "upscale", "edit", "video", "studio-admin", "ai-image")]
    assert all(len(d) <= 100 and not d.endswith("…") for d in descriptions(ours)), "none cut off by Discord's limit"
    mask = next(o for o in fill["options"] if o["name"] == "mask")
    assert mask["description"] == "Black-and-white mask, white = change (or use left/top/width/height)"
    assert sorted(o["name"] for o in commands["video"]["options"]) == ["image", "prompt"]


async def test_autocomplete_follows_the_chosen_studio(emulator: DiscordEmulator, easel: Easel) -> None:
    member = emulator.add_member("ana")
    styles = await emulator.autocomplete(
        "imagine", {"prompt": "a fox", "studio": "imagine", "style": ""}, focused="style", user=member
    )
    assert [c["value"] for c in styles][:3] == ["imagine-turbo", "realistic", "anime"] and len(styles) == 7
    none = await emulator.autocomplete(
        "imagine", {"prompt": "a fox", "studio": "mimipanda", "style": ""}, focused="style", user=member
    )
    assert none == []
    shapes = await emulator.autocomplete(
        "imagine", {"prompt": "a fox", "studio": "mimipanda", "aspect_ratio": ""}, focused="aspect_ratio", user=member
    )
    assert [c["value"] for c in shapes] == ["1:1", "2:3", "3:2", "4:5", "5:4"]
    wide = await emulator.autocomplete(
        "imagine", {"prompt": "a fox", "aspect_ratio": "wide"}, focused="aspect_ratio", user=member
    )
    assert [c["value"] for c in wide] == ["16:9"], "no studio chosen: the server's (here the first) studio"


# --- /imagine ------------------------------------------------------------------------------------------


async def test_imagine_with_every_option_and_buttons_that_state_their_cost(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine, mimi: FakeMimiPanda
) -> None:
    member = emulator.add_member("bo")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke(
        "imagine",
        {"prompt": "A lighthouse at dusk", "studio": "imagine", "style": "anime", "aspect_ratio": "16:9", "seed": 7},
        user=member,
    )
    job_id = await started_job(ix)
    message = await delivered(ix, job_id)
    (call,) = imagine.calls("image/generations")
    assert call.fields == {"prompt": "A lighthouse at dusk", "style": "anime", "aspect_ratio": "16:9", "seed": "7"}
    (image,) = attached(emulator, message).values()
    assert open_image(image).size == (256, 144)
    assert buttons(message) == {
        f"ej:im-again:{job_id}": "Again · 1 credit",
        f"ej:im-prompt:{job_id}": "Edit prompt · 1 credit",
        f"ej:upscale:{job_id}": "Upscale · 2 credits",
        f"ej:info:{job_id}": "Details",
        f"ej:del:{job_id}": "Delete",
    }
    assert await credits(easel, emulator, member) == before - 1
    assert mimi.creates() == []

    # Again: the same request with a new seed, at the same studio, charged again.
    again = await emulator.press_button(message, f"ej:im-again:{job_id}", user=member)
    again_id = await started_job(again)
    await delivered(again, again_id)
    second = imagine.calls("image/generations")[1].fields
    assert {k: v for k, v in second.items() if k != "seed"} == {k: v for k, v in call.fields.items() if k != "seed"}
    assert second["seed"] != "7"
    assert (await easel.bot.jobs.store.get(again_id)).parent_job == job_id  # type: ignore[union-attr]

    # Edit prompt: a modal with the prompt, then the same options with the new one.
    pressed = await emulator.press_button(message, f"ej:im-prompt:{job_id}", user=member)
    shown = await pressed.response()
    assert shown["type"] == 9, "a modal"
    assert "A lighthouse at dusk" in str(shown["data"]["components"]), "it starts from the old prompt"
    edited = await emulator.submit_modal(f"ej:im-prompt-set:{job_id}", {"prompt": "A lighthouse at dawn"}, user=member)
    edited_id = await started_job(edited)
    await delivered(edited, edited_id)
    third = imagine.calls("image/generations")[2].fields
    assert (third["prompt"], third["style"], third["aspect_ratio"]) == ("A lighthouse at dawn", "anime", "16:9")

    # Upscale: the server's upscale studio (here the first enabled: Imagine's enhance), from this result.
    up = await emulator.press_button(message, f"ej:upscale:{job_id}", user=member)
    up_id = await started_job(up)
    upscaled = await delivered(up, up_id)
    (enhance,) = imagine.calls("image/enhance")
    assert enhance.files["image"][2] == image
    (big,) = attached(emulator, upscaled).values()
    assert open_image(big).size == (512, 288)
    assert (await easel.bot.jobs.store.get(up_id)).parent_job == job_id  # type: ignore[union-attr]
    assert await credits(easel, emulator, member) == before - 1 - 1 - 1 - 2


async def test_mimi_panda_makes_imagine_when_chosen_and_its_shapes_are_mapped(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine, mimi: FakeMimiPanda
) -> None:
    member = emulator.add_member("cy")
    ix = await emulator.invoke(
        "imagine", {"prompt": "A red fox in the snow", "studio": "mimipanda", "aspect_ratio": "2:3"}, user=member
    )
    job_id = await started_job(ix)
    message = await delivered(ix, job_id)
    assert mimi.creates("ai/image")[0].json == {"prompt": "A red fox in the snow", "aspectRatio": "2x3"}
    assert imagine.calls() == []
    ids = custom_ids(message)
    assert ids[:3] == [f"ej:mp-col:{job_id}", f"ej:mp-pbn:{job_id}", f"ej:mp-up:{job_id}"]
    assert buttons(message)[f"ej:im-again:{job_id}"] == "Again · 1 credit"
    # The buttons survive a restart: Again makes the same request at the same studio.
    await easel.restart()
    again = await emulator.press_button(message, f"ej:im-again:{job_id}", user=member)
    again_id = await started_job(again)
    await delivered(again, again_id)
    assert [c.json for c in mimi.creates("ai/image")] == [{"prompt": "A red fox in the snow", "aspectRatio": "2x3"}] * 2
    assert imagine.calls() == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"studio": "mimipanda", "style": "anime"},
            "Mimi Panda has no style option; pick Imagine or leave style empty",
        ),
        ({"studio": "mimipanda", "aspect_ratio": "16:9"}, "Mimi Panda has no aspect ratio `16:9`; its shapes are 1:1"),
        ({"studio": "imagine", "aspect_ratio": "4:5"}, "Imagine has no aspect ratio `4:5`"),
        ({"studio": "mimipanda", "transparent": True}, "Mimi Panda cannot make transparent pictures"),
        ({"studio": "mimipanda", "seed": 5}, "Mimi Panda has no seed option"),
        ({"style": "anime", "transparent": True}, "A transparent picture has no style at Imagine"),
        ({"style": "watercolour"}, "Imagine has no style `watercolour`; its styles are imagine-turbo"),
    ],
)
async def test_imagine_refuses_options_that_do_not_fit_the_studio(
    emulator: DiscordEmulator,
    easel: Easel,
    imagine: FakeImagine,
    mimi: FakeMimiPanda,
    options: dict[str, Any],
    expected: str,
) -> None:
    member = emulator.add_member("dee")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("imagine", {"prompt": "A fox", **options}, user=member)
    assert expected in await refusal(ix)
    await nothing_made(easel, emulator, member, imagine, mimi)
    assert await credits(easel, emulator, member) == before


# --- server defaults and fall-over ------------------------------------------------------------------------


async def test_admins_choose_the_default_studio_and_members_cannot(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine, mimi: FakeMimiPanda
) -> None:
    member = emulator.add_member("eve")
    ix = await emulator.invoke(
        "studio-admin default", {"feature": "image", "studio": "mimipanda"}, user=member, override_permissions=True
    )
    assert "Only server admins (Manage Server)" in await refusal(ix)
    assert await easel.bot.db.fetchall("SELECT * FROM studio_defaults") == []

    ix = await emulator.invoke("studio-admin default", {"feature": "edit", "studio": "mimipanda"})
    assert "Mimi Panda cannot do edits; the studios that can are: Imagine" in await refusal(ix)
    ix = await emulator.invoke("studio-admin default", {"feature": "image", "studio": "mimipanda"})
    assert "made by **Mimi Panda**" in await refusal(ix)

    made = await emulator.invoke("imagine", {"prompt": "A quiet harbour"}, user=member)
    job_id = await started_job(made)
    await delivered(made, job_id)
    assert len(mimi.creates("ai/image")) == 1 and imagine.calls() == []

    ix = await emulator.invoke("studio-admin default", {"feature": "upscale", "studio": "local"})
    text = await refusal(ix)
    assert "Easel's own studio is off in this Easel (no API key), so for now Imagine makes these" in text
    view = await emulator.invoke("studio-admin view")
    await view.response()
    embed = (await view.wait_original(lambda m: bool(m.get("embeds"))))["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert "Default: Mimi Panda" in fields["Text-to-image"] and "Now: **Mimi Panda**" in fields["Text-to-image"]
    assert "Default: Easel's own studio" in fields["Upscale"] and "Now: **Imagine**" in fields["Upscale"]

    # The member's choice still wins over the default.
    chosen = await emulator.invoke("imagine", {"prompt": "A quiet harbour", "studio": "imagine"}, user=member)
    await delivered(chosen, await started_job(chosen))
    assert len(imagine.calls("image/generations")) == 1

    # An upscale whose default studio is off: the next enabled one makes it, and the member is told.
    up = await emulator.invoke("upscale", {}, user=member, attachments={"image": picture()})
    up_id = await started_job(up)
    told = await up.wait_followup(lambda m: "is off in this Easel" in m["content"])
    assert (
        "Easel's own studio (this server's default) is off in this Easel, so Imagine is making this" in told["content"]
    )
    await delivered(up, up_id)
    assert len(imagine.calls("image/enhance")) == 1


async def test_the_upscale_button_uses_the_servers_upscale_studio(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine, mimi: FakeMimiPanda
) -> None:
    ix = await emulator.invoke("studio-admin default", {"feature": "upscale", "studio": "mimipanda"})
    assert "made by **Mimi Panda**" in await refusal(ix)
    member = emulator.add_member("pia")
    ix = await emulator.invoke("imagine", {"prompt": "A paper boat", "aspect_ratio": "3:4"}, user=member)
    job_id = await started_job(ix)
    message = await delivered(ix, job_id)
    (source,) = attached(emulator, message).values()
    up = await emulator.press_button(message, f"ej:upscale:{job_id}", user=member)
    up_id = await started_job(up)
    upscaled = await delivered(up, up_id)
    (create,) = mimi.creates("image/upscale")
    assert create.form == {"upscale": "4"}, "no factor asked: Mimi Panda's largest for a small picture"
    assert create.files["image"][2] == source
    assert open_image(next(iter(attached(emulator, upscaled).values()))).size == (192 * 4, 256 * 4)
    assert imagine.calls("image/enhance") == []


@pytest.mark.parametrize("refusal_kind", ["out of credits", "key refused"])
async def test_imagine_refusing_before_accepting_hands_the_job_to_mimi_panda_and_says_so(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine, mimi: FakeMimiPanda, refusal_kind: str
) -> None:
    if refusal_kind == "out of credits":
        imagine.credits = 0  # every create answers 1101 / 402: refused before it was accepted
    else:
        imagine.api_key = "vk-rotated"  # Easel's key is refused: 1001 / 401
    member = emulator.add_member("fay")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("imagine", {"prompt": "A kite over the dunes", "aspect_ratio": "3:2"}, user=member)
    job_id = await started_job(ix)
    message = await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=15)
    new_id = footer(message).split()[1]
    assert new_id != job_id
    told = await ix.wait_original(lambda m: "making it" in m["content"] or "Done" in m["content"])
    versions = [v["content"] for v in emulator.message_versions(int(told["id"]))]
    assert any("Imagine could not take this" in v and "Mimi Panda is making it" in v for v in versions)
    assert mimi.creates("ai/image")[0].json == {"prompt": "A kite over the dunes", "aspectRatio": "3x2"}
    old, new = await finished(easel, job_id), await finished(easel, new_id)
    assert (old.status, new.status, new.provider, new.feature) == (
        JobStatus.FAILED,
        JobStatus.SUCCEEDED,
        "mimipanda",
        "ai_image",
    )
    assert await credits(easel, emulator, member) == before - 1
    assert len(imagine.calls("image/generations")) == 1


async def test_a_styled_request_has_nowhere_to_fall_over_and_is_refunded(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine, mimi: FakeMimiPanda
) -> None:
    imagine.credits = 0
    member = emulator.add_member("gus")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("imagine", {"prompt": "A kite", "style": "anime"}, user=member)
    job_id = await started_job(ix)
    failed = await ix.wait_followup(lambda m: "failed" in m["content"], timeout=15)
    assert f"job `{job_id}`" in failed["content"] and "not charged" in failed["content"]
    assert mimi.creates() == [], "Mimi Panda cannot honour a style: it is not sent something else"
    assert await credits(easel, emulator, member) == before


async def test_a_connection_dropped_during_a_generation_is_never_resent_and_is_refunded(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine, mimi: FakeMimiPanda
) -> None:
    imagine.drop_next(route="image/generations")  # the request was read, then the connection dropped
    member = emulator.add_member("hat")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("imagine", {"prompt": "A tin robot", "studio": "imagine"}, user=member)
    job_id = await started_job(ix)
    failed = await ix.wait_followup(lambda m: "failed" in m["content"], timeout=15)
    assert f"job `{job_id}`" in failed["content"] and "You were not charged: 1 credit went back" in failed["content"]
    job = await finished(easel, job_id)
    assert job.status is JobStatus.FAILED
    assert len(imagine.calls("image/generations")) == 1, "a create that may have run is never sent again"
    assert mimi.creates() == [], "it may have been accepted: no fall-over after that"
    assert await credits(easel, emulator, member) == before
    assert len([m for m in ix.followups if job_id in m["content"] or job_id in footer(m)]) == 1


# --- results: transparency, shrinking, signed links -----------------------------------------------------


async def test_a_shrunk_transparent_result_keeps_its_alpha_and_links_to_the_original(
    emulator: DiscordEmulator, easel_factory: EaselFactory, imagine: FakeImagine, mimi: FakeMimiPanda
) -> None:
    easel = await start(easel_factory, imagine, mimi, public_url="https://easel.example")
    imagine.image_long_side = 1024
    emulator.attachment_size_limit = 4_000
    member = emulator.add_member("ida")
    ix = await emulator.invoke("imagine", {"prompt": "A glass teapot", "transparent": True}, user=member)
    job_id = await started_job(ix)
    message = await delivered(ix, job_id)
    (data,) = attached(emulator, message).values()
    shrunk = open_image(data)
    assert shrunk.format in ("PNG", "WEBP") and has_alpha(shrunk)
    assert len(data) <= 4_000
    (original,) = await easel.bot.jobs.store.results(job_id)
    assert original.size > 4_000
    corner = shrunk.convert("RGBA").getpixel((0, 0))
    assert isinstance(corner, tuple) and corner[3] == 0, "the background is still see-through"
    assert f"`{original.filename}` was shrunk to fit Discord's upload limit" in message["content"]
    url = message["content"].split("Original: <", 1)[1].split(">", 1)[0]
    assert url.startswith(f"https://easel.example/results/{job_id}/0?e=")
    path = urlsplit(url)
    async with httpx.AsyncClient(base_url=easel.web_url) as web:
        served = await web.get(f"{path.path}?{path.query}")
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        full = open_image(served.content)
        assert full.size == (1024, 1024) and has_alpha(full)
        tampered = await web.get(f"{path.path}?{path.query[:-1]}{'0' if path.query[-1] != '0' else '1'}")
        assert tampered.status_code == 404
        key = await result_links.signing_key(easel.bot.db, None)
        past = int(time.time()) - 60
        expired = await web.get(f"/results/{job_id}/0?e={past}&s={result_links.sign(key, job_id, 0, past)}")
        assert expired.status_code == 410
        await easel.bot.jobs.files.remove_results(job_id)  # the job's files are no longer kept
        gone = await web.get(f"{path.path}?{path.query}")
        assert gone.status_code == 404


# --- /edit ----------------------------------------------------------------------------------------------


async def test_fill_with_a_mask_of_another_size_and_erase_with_a_rectangle(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine
) -> None:
    member = emulator.add_member("jo")
    before = await credits(easel, emulator, member)
    small = Image.new("L", (40, 30), 0)
    small.paste(255, (0, 0, 20, 30))  # the left half
    ix = await emulator.invoke(
        "edit fill",
        {"prompt": "a bunch of tulips"},
        user=member,
        attachments={"image": picture(160, 120), "mask": Attachment(png(small), "mask.png", "image/png")},
    )
    job_id = await started_job(ix)
    note = await ix.wait_followup(lambda m: "stretched" in m["content"])
    assert "Your mask is 40×30 px and the picture 160×120 px" in note["content"]
    message = await delivered(ix, job_id)
    (call,) = imagine.calls("image/edits/generative-fill")
    assert call.fields == {"prompt": "a bunch of tulips"}
    sent_mask = open_image(call.files["mask"][2])
    assert sent_mask.size == (160, 120)
    assert sent_mask.getpixel((10, 60)) == 255 and sent_mask.getpixel((150, 60)) == 0
    assert buttons(message)[f"ej:upscale:{job_id}"] == "Upscale · 2 credits"

    ix = await emulator.invoke(
        "edit erase",
        {"left": 50, "top": 0, "width": 50, "height": 100},
        user=member,
        attachments={"image": picture(200, 100)},
    )
    await delivered(ix, await started_job(ix))
    rect = open_image(imagine.calls("image/edits/remove")[0].files["mask"][2])
    assert rect.size == (200, 100)
    assert rect.getpixel((99, 50)) == 0 and rect.getpixel((100, 0)) == 255 and rect.getpixel((199, 99)) == 255
    assert await credits(easel, emulator, member) == before - 2 - 2


@pytest.mark.parametrize(
    ("command", "options", "files", "expected"),
    [
        ("edit fill", {"prompt": "tulips"}, ("image",), "exactly one of: a `mask` attachment"),
        ("edit erase", {"left": 0, "top": 0, "width": 10, "height": 10}, ("image", "mask"), ", not both."),
        ("edit erase", {"left": 60, "top": 0, "width": 50, "height": 10}, ("image",), "left + width is 110%"),
        ("edit erase", {"left": 0, "width": 50}, ("image",), "missing: top, height"),
        ("edit erase", {}, ("image", "black"), "The mask has no white area"),
        ("edit background", {"prompt": "a beach"}, ("image",), "A new background needs a picture with a transparent"),
        ("upscale", {"studio": "imagine", "factor": 4}, ("image",), "Imagine enhances at its own size"),
        ("video prompt", {"prompt": "waves", "style": "Bad Style!"}, (), "a video style is a name of letters"),
    ],
)
async def test_each_refusal_is_specific_private_and_free(
    emulator: DiscordEmulator,
    easel: Easel,
    imagine: FakeImagine,
    mimi: FakeMimiPanda,
    command: str,
    options: dict[str, Any],
    files: tuple[str, ...],
    expected: str,
) -> None:
    member = emulator.add_member("kit")
    before = await credits(easel, emulator, member)
    black = Attachment(png(Image.new("L", (160, 120), 0)), "black.png", "image/png")
    given = {"image": picture(), "mask": picture(), "black": black}
    attachments = {("mask" if f == "black" else f): given[f] for f in files}
    ix = await emulator.invoke(command, options, user=member, attachments=attachments)
    assert expected in await refusal(ix)
    await nothing_made(easel, emulator, member, imagine, mimi)
    assert await credits(easel, emulator, member) == before


async def test_remove_background_then_a_new_background(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine
) -> None:
    member = emulator.add_member("lu")
    ix = await emulator.invoke("edit remove-background", {}, user=member, attachments={"image": picture(200, 150)})
    job_id = await started_job(ix)
    message = await delivered(ix, job_id)
    (cutout,) = attached(emulator, message).values()
    assert open_image(cutout).format == "PNG" and has_alpha(open_image(cutout))
    ix = await emulator.invoke(
        "edit background",
        {"prompt": "a sunny beach", "seed": 11},
        user=member,
        attachments={"image": Attachment(cutout, "cutout.png", "image/png")},
    )
    await delivered(ix, await started_job(ix))
    (call,) = imagine.calls("image/generations/ai-background")
    assert call.fields == {"prompt": "a sunny beach", "style": "product-shoot", "seed": "11"}
    assert call.files["image"][2] == cutout


async def test_a_studio_refusal_after_sending_is_refunded(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine
) -> None:
    imagine.fail_next(code=1100, route="image/background/remover")
    member = emulator.add_member("mo")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("edit remove-background", {}, user=member, attachments={"image": picture()})
    job_id = await started_job(ix)
    failed = await ix.wait_followup(lambda m: "failed" in m["content"], timeout=15)
    assert f"job `{job_id}`" in failed["content"] and "2 credits went back" in failed["content"]
    assert await credits(easel, emulator, member) == before


# --- /upscale, /video ------------------------------------------------------------------------------------


async def test_upscale_at_each_studio(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine, mimi: FakeMimiPanda
) -> None:
    member = emulator.add_member("ned")
    ix = await emulator.invoke("upscale", {"studio": "imagine"}, user=member, attachments={"image": picture()})
    message = await delivered(ix, await started_job(ix))
    assert open_image(next(iter(attached(emulator, message).values()))).size == (320, 240)
    ix = await emulator.invoke(
        "upscale", {"studio": "mimipanda", "factor": 4}, user=member, attachments={"image": picture(1200, 300)}
    )
    job_id = await started_job(ix)
    note = await ix.wait_followup(lambda m: "2x only" in m["content"])
    assert "so this will be a **2x** upscale" in note["content"]
    await delivered(ix, job_id)
    assert mimi.creates("image/upscale")[0].form == {"upscale": "2"}


async def test_videos_from_a_prompt_and_from_a_picture_re_encoded_to_fit(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine
) -> None:
    # The studio's video is ~1 MB, hard to compress; this server takes 150 kB uploads.
    noisy = make_mp4(320, 240, seconds=1.0, fps=12, noise=True, label="noisy")
    imagine._mp4[(112, 64)] = noisy  # what the fake serves for a 16:9 video
    emulator.attachment_size_limit = 150_000
    member = emulator.add_member("oz")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("video prompt", {"prompt": "waves at night", "aspect_ratio": "16:9"}, user=member)
    job_id = await started_job(ix)
    message = await delivered(ix, job_id)
    assert imagine.calls("video/text-to-video")[0].fields == {
        "prompt": "waves at night",
        "style": "kling-1.0-pro",
        "aspect_ratio": "16:9",
    }
    ((name, data),) = attached(emulator, message).items()
    assert name.endswith(".mp4") and len(data) <= 150_000 < len(noisy)
    assert data[4:8] == b"ftyp"
    assert "was shrunk to fit Discord's upload limit" in message["content"]
    assert "Original:" not in message["content"], "no PUBLIC_URL: no link"

    ix = await emulator.invoke(
        "video image", {"prompt": "the cat blinks"}, user=member, attachments={"image": picture(192, 96)}
    )
    await delivered(ix, await started_job(ix))
    call = imagine.calls("video/image-to-video")[0]
    assert set(call.files) == {"file"} and call.fields == {"prompt": "the cat blinks", "style": "kling-1.0-pro"}
    assert await credits(easel, emulator, member) == before - 20


async def test_a_video_the_studio_fails_is_refunded(
    emulator: DiscordEmulator, easel: Easel, imagine: FakeImagine
) -> None:
    member = emulator.add_member("quin")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("video prompt", {"prompt": "FAILME a storm"}, user=member)
    job_id = await started_job(ix)
    failed = await ix.wait_followup(lambda m: "failed" in m["content"], timeout=15)
    assert f"job `{job_id}`" in failed["content"] and "10 credits went back" in failed["content"]
    assert (await finished(easel, job_id)).status is JobStatus.FAILED
    assert await credits(easel, emulator, member) == before


async def test_any_features_result_can_carry_upscale_and_a_picture_is_picked_among_several(
    emulator: DiscordEmulator, easel_factory: EaselFactory, imagine: FakeImagine
) -> None:
    studio = await FakeStudio().start()
    try:

        def build(settings: Settings, client: httpx.AsyncClient) -> dict[str, Adapter]:
            return adapters(imagine, None)(settings, client) | {
                "studio_poll": PollStudio(client, studio.base_url, studio.token)
            }

        easel = await easel_factory(
            imagine_api_key=IM_KEY,
            imagine_base_url=imagine.base_url,
            adapter_factory=build,
            extra_extensions=("tests.ext.studio", "tests.ext.upscale_button"),
            provider_limits_override={"imagine": FAST, "studio_poll": FAST},
        )
        member = emulator.add_member("rae")
        ix = await emulator.invoke("studio", {"prompt": "three foxes", "count": 3, "size": 96}, user=member)
        job_id = await started_job(ix)
        message = await delivered(ix, job_id)
        pictures = list(attached(emulator, message).values())
        assert len(pictures) == 3
        assert buttons(message)[f"ej:upscale:{job_id}"] == "Upscale · 2 credits"
        pressed = await emulator.press_button(message, f"ej:upscale:{job_id}", user=member)
        await pressed.response()
        picker = await pressed.wait_original(lambda m: bool(m.get("components")))
        assert "3 images" in picker["content"]
        positions = [r.position for r in await easel.bot.jobs.store.results(job_id) if r.kind == "image"]
        assert len(positions) == 3
        picked = await emulator.select(picker, f"ej:upscale-pick:{job_id}", [str(positions[2])], user=member)
        child_id = await started_job(picked)
        await delivered(picked, child_id)
        (enhance,) = imagine.calls("image/enhance")
        assert enhance.files["image"][2] == pictures[2], "the picked image is the one upscaled"
    finally:
        await studio.stop()
