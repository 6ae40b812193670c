"""Mimi Panda commands end to end: the real bot through the Discord emulator, against the fake Mimi Panda."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.jobs.engine import ProviderLimits
from bot.jobs.model import Delivery, Job, JobStatus
from bot.providers.base import Adapter
from bot.providers.mimipanda import MimiPandaAdapter
from bot.settings import Settings
from tests.conftest import EaselFactory
from tests.emulator import Attachment, DiscordEmulator, Interaction, Member
from tests.fakes import images
from tests.fakes.mimipanda import NAMED_COLORS, FakeMimiPanda
from tests.harness import Easel, eventually

TOKEN = "mp-command-token"
FAST = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01)
MB = 1024 * 1024


@pytest.fixture
async def fake() -> AsyncIterator[FakeMimiPanda]:
    server = FakeMimiPanda(token=TOKEN)
    server.queue_seconds, server.processing_seconds = 0.02, 0.04
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def easel(easel_factory: EaselFactory, fake: FakeMimiPanda) -> Easel:
    def adapters(settings: Settings, client: httpx.AsyncClient) -> dict[str, Adapter]:
        # Production defaults except the rhythm: a first poll after 20 ms, then the engine's fast limits.
        return {
            "mimipanda": MimiPandaAdapter(
                client, base_url=str(settings.mimipanda_base_url), token=TOKEN, first_poll_s=0.02, poll_s=None
            )
        }

    return await easel_factory(
        mimipanda_api_token=TOKEN,
        mimipanda_base_url=fake.base_url,
        adapter_factory=adapters,
        provider_limits_override={"mimipanda": FAST},
    )


# --- helpers -------------------------------------------------------------------------------------------


def png_attachment(data: bytes | None = None, name: str = "photo.png") -> dict[str, Attachment]:
    return {"image": Attachment(data if data is not None else images.png(160, 120), name, "image/png")}


async def credits(easel: Easel, emulator: DiscordEmulator, member: Member) -> int:
    balance = await easel.bot.ledger.balance(emulator.guild_id, member.id, [])  # type: ignore[attr-defined]
    return int(balance.available)


async def started_job(ix: Interaction) -> str:
    """The job id from the member's ephemeral status message."""
    await ix.response()
    assert ix.ephemeral
    message = await ix.wait_original(lambda m: "job `" in m["content"])
    return str(message["content"].split("job `")[1].split("`")[0])


async def result(ix: Interaction, job_id: str) -> dict[str, Any]:
    return await ix.wait_followup(lambda m: bool(m.get("embeds")) and job_id in footer(m), timeout=10)


def footer(message: dict[str, Any]) -> str:
    return str(message["embeds"][0]["footer"]["text"]) if message.get("embeds") else ""


async def refusal(ix: Interaction) -> str:
    """The ephemeral message a refused command got (in place of its "thinking" placeholder if deferred)."""
    body = await ix.response()
    assert ix.ephemeral
    if ix.deferred:
        return str((await ix.wait_original(lambda m: bool(m["content"])))["content"])
    return str(body["data"]["content"])


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


def attached(emulator: DiscordEmulator, message: dict[str, Any]) -> dict[str, bytes]:
    return {a["filename"]: emulator.file_bytes(a) for a in message["attachments"]}


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def no_job_was_made(easel: Easel, emulator: DiscordEmulator, member: Member, fake: FakeMimiPanda) -> None:
    assert await easel.bot.jobs.store.for_member(emulator.guild_id, member.id) == []
    assert fake.creates() == []


async def job(easel: Easel, job_id: str) -> Job:
    found = await easel.bot.jobs.store.get(job_id)
    assert found is not None
    return found


# --- registration --------------------------------------------------------------------------------------


async def test_commands_are_registered_only_with_a_token(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimiPanda
) -> None:
    await easel_factory(local_studio_enabled=False)
    assert "paint-by-numbers" not in {c["name"] for c in emulator.commands}
    await easel_factory(mimipanda_api_token=TOKEN, mimipanda_base_url=fake.base_url)
    commands = {c["name"]: c for c in emulator.commands}
    assert {"coloring", "paint-by-numbers", "ai-image", "upscale", "ai-filter"} <= set(commands)
    assert sorted(o["name"] for o in commands["coloring"]["options"]) == ["photo", "prompt"]
    pbn = {o["name"]: o for o in commands["paint-by-numbers"]["options"]}
    assert len(pbn) == 16, "Mimi Panda's 14 options, the studio, and Easel's own studio's detail"
    assert [c["value"] for c in pbn["studio"]["choices"]] == ["mimipanda", "local"]
    assert len(pbn["art_style"]["choices"]) == 16
    assert (pbn["colors"]["min_value"], pbn["colors"]["max_value"]) == (7, 100)
    assert (pbn["prompt"]["min_length"], pbn["prompt"]["max_length"]) == (3, 600)
    photo = next(o for o in commands["coloring"]["options"] if o["name"] == "photo")
    assert len(next(o for o in photo["options"] if o["name"] == "type")["choices"]) == 11


# --- coloring pages ------------------------------------------------------------------------------------


async def test_coloring_page_from_a_photo(emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda) -> None:
    fake.early_404_polls, fake.html_polls = 1, 1  # the item is not visible yet right after the create
    member = emulator.add_member("ada")
    before = await credits(easel, emulator, member)
    photo = images.jpeg(300, 200, label="cat")
    ix = await emulator.invoke(
        "coloring photo",
        {"version": "v1", "type": "for_kids"},
        user=member,
        attachments={"image": Attachment(photo, "cat.jpg", "image/jpeg")},
    )
    job_id = await started_job(ix)
    assert ix.deferred, "a command with an attachment defers before downloading it"
    message = await result(ix, job_id)
    assert message["content"].startswith(f"<@{member.id}> your coloring page is ready")
    (page,) = attached(emulator, message).values()
    assert open_image(page).size == (300, 200)
    (create,) = fake.creates("coloring")
    assert create.form == {"version": "v1", "type": "for_kids"}
    assert create.files["image"][2] == photo
    assert custom_ids(message) == [f"ej:mp-up:{job_id}", f"ej:info:{job_id}", f"ej:del:{job_id}"]
    assert await credits(easel, emulator, member) == before - 1
    assert [r.fault for r in fake.polls()][:2] == ["early_404", "html"]


async def test_coloring_type_alone_picks_its_version_and_a_mismatch_is_refused(
    emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda
) -> None:
    member = emulator.add_member("bea")
    ix = await emulator.invoke(
        "coloring photo", {"version": "v2", "type": "for_kids"}, user=member, attachments=png_attachment()
    )
    text = await refusal(ix)
    assert "“For kids” belongs to version v1" in text
    assert "General, Detailed, Anime, Simplified, Comic" in text
    await no_job_was_made(easel, emulator, member, fake)
    ix = await emulator.invoke("coloring photo", {"type": "sketching"}, user=member, attachments=png_attachment())
    job_id = await started_job(ix)
    await result(ix, job_id)
    assert fake.creates("coloring")[0].form == {"version": "v1", "type": "sketching"}


async def test_coloring_page_from_a_prompt(emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda) -> None:
    member = emulator.add_member("cyd")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke(
        "coloring prompt",
        {
            "prompt": "A unicorn in an enchanted forest",
            "style": "adults_coloring_page",
            "aspect_ratio": "3x4",
            "version": "v1",
        },
        user=member,
    )
    job_id = await started_job(ix)
    message = await result(ix, job_id)
    assert fake.creates("ai/coloring")[0].json == {
        "prompt": "A unicorn in an enchanted forest",
        "style": "adults_coloring_page",
        "aspectRatio": "3x4",
        "version": "v1",
    }
    pages = attached(emulator, message)
    assert len(pages) == 2
    assert all(open_image(data).size == (512, 683) for data in pages.values())
    assert message["embeds"][0]["description"] == "A unicorn in an enchanted forest"
    assert await credits(easel, emulator, member) == before - 2


# --- paint-by-numbers ----------------------------------------------------------------------------------


async def test_paint_by_numbers_from_a_photo_with_every_option(
    emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda
) -> None:
    codes = [hex_code for _, hex_code in NAMED_COLORS[:8]]
    fake.palettes[7] = codes
    member, other = emulator.add_member("dee"), emulator.add_member("eli")
    before = await credits(easel, emulator, member)
    photo = images.png(200, 150, label="harbour")
    options = {
        "colors": 8,
        "segments": "level2",
        "gradient": "normal",
        "precision": "low",
        "canvas": "12x16",
        "crop": True,
        "details": "ultra",
        "palette": 7,
        "palette_colors": ", ".join(codes),
        "mix_palette": True,
        "art_style": "painting-watercolor",
        "min_area": 3,
    }
    ix = await emulator.invoke("paint-by-numbers", options, user=member, attachments=png_attachment(photo))
    job_id = await started_job(ix)
    message = await result(ix, job_id)
    (create,) = fake.creates("pbn")
    assert create.form == {
        "numberOfColors": "8",
        "segmentsComplexity": "level2",
        "gradientStep": "normal",
        "colorPrecision": "low",
        "canvasSize": "12x16",
        "crop": "1",
        "detailsFilter": "ultra",
        "palette": "7",
        "paletteColors": ",".join(codes),
        "mixPalette": "1",
        "aiFilterType": "painting-watercolor",
        "minArea": "3",
    }
    assert create.files["image"][2] == photo
    # Sent: the numbered template, the coloured picture and the legend; the legend also as text.
    files = attached(emulator, message)
    assert list(files) == ["pbn-template.png", "pbn-colored.jpg", "pbn-legend.png"]
    key = create.job_key
    assert key is not None
    stored = fake.jobs[key].files
    assert stored is not None
    assert files["pbn-template.png"] == stored["pbn.png"][1]
    assert files["pbn-colored.jpg"] == stored["picture.jpg"][1]
    legend = open_image(files["pbn-legend.png"]).convert("RGB")
    legend_colours = {colour for _, colour in legend.getcolors(1 << 20) or []}
    for _, hex_code in NAMED_COLORS[:8]:
        assert tuple(int(hex_code[i : i + 2], 16) for i in (1, 3, 5)) in legend_colours
    assert "**Palette** (8 colours)" in message["content"]
    for number, (name, hex_code) in enumerate(NAMED_COLORS[:8], 1):
        assert f"`{number:>2}` {name} · {hex_code}" in message["content"]
    buttons = custom_ids(message)
    assert buttons[:6] == [f"ej:mp-file:{job_id}:{kind}" for kind in ("svg", "pdf", "csv", "gpl", "kpl", "swatches")]
    assert await credits(easel, emulator, member) == before - 3
    # The kept files, sent privately to whoever presses (another member too).
    expected = {
        "svg": ("pbn.svg", fake.jobs[key].downloads["svg"]),
        "pdf": ("pbn.pdf", fake.jobs[key].downloads["pdf"]),
    }
    for kind, (filename, data) in expected.items():
        pressed = await emulator.press_button(message, f"ej:mp-file:{job_id}:{kind}", user=other)
        await pressed.response()
        assert pressed.ephemeral
        sent = await pressed.wait_original(lambda m: bool(m["attachments"]))
        assert attached(emulator, sent) == {filename: data}
    pressed = await emulator.press_button(message, f"ej:mp-file:{job_id}:csv", user=member)
    await pressed.response()
    sent = await pressed.wait_original(lambda m: bool(m["attachments"]))
    csv = attached(emulator, sent)["palette.csv"].decode()
    assert csv.splitlines()[0] == "number,name,hex,r,g,b"
    assert len(csv.splitlines()) == 9


async def test_paint_by_numbers_from_a_prompt_with_a_long_palette(
    emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda
) -> None:
    member = emulator.add_member("fay")
    ix = await emulator.invoke("paint-by-numbers", {"prompt": "Sunset over mountains", "colors": 100}, user=member)
    job_id = await started_job(ix)
    message = await result(ix, job_id)
    (create,) = fake.creates("pbn")
    assert create.form["prompt"] == "Sunset over mountains"
    assert create.form["numberOfColors"] == "100"
    assert create.files == {}
    assert len(message["content"]) <= 2000
    assert "more: see the legend image" in message["content"]
    files = attached(emulator, message)
    assert list(files) == ["pbn-template.png", "pbn-colored.jpg", "pbn-legend.png", "pbn-legend.txt"]
    lines = files["pbn-legend.txt"].decode().splitlines()
    assert len(lines) == 100
    assert lines[99].split() == ["100", "Silver", "#C0C0C0"]
    pressed = await emulator.press_button(message, f"ej:mp-file:{job_id}:kpl", user=member)
    await pressed.response()
    sent = await pressed.wait_original(lambda m: bool(m["attachments"]))
    ((name, data),) = attached(emulator, sent).items()
    assert name == "palette-kpl.zip", "palettes over 30 colours come zipped"
    assert len(zipfile.ZipFile(io.BytesIO(data)).namelist()) == 4


async def test_paint_by_numbers_needs_exactly_one_source_and_valid_palette_options(
    emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda
) -> None:
    member = emulator.add_member("gus")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("paint-by-numbers", {"colors": 20}, user=member)
    assert "attach an `image` **or** write a `prompt`." in await refusal(ix)
    ix = await emulator.invoke("paint-by-numbers", {"prompt": "A cat"}, user=member, attachments=png_attachment())
    assert "not both" in await refusal(ix)
    ix = await emulator.invoke("paint-by-numbers", {"prompt": "A cat", "palette_colors": "a,b,c,d,e,f,g"}, user=member)
    assert "`palette_colors`" not in (text := await refusal(ix)) and "set the palette id" in text
    ix = await emulator.invoke(
        "paint-by-numbers", {"prompt": "A cat", "palette": 1, "palette_colors": "a,b"}, user=member
    )
    assert "`palette_colors`: list at least 7 colour codes" in await refusal(ix)
    ix = await emulator.invoke("paint-by-numbers", {"prompt": "A cat", "canvas": "50x50"}, user=member)
    assert "`canvas`: each side of the canvas must be 4 to 45 inches" in await refusal(ix)
    ix = await emulator.invoke("paint-by-numbers", {"prompt": "  ab    "}, user=member)
    assert "at least 3 characters" in await refusal(ix)
    await no_job_was_made(easel, emulator, member, fake)
    assert await credits(easel, emulator, member) == before


# --- AI images, chaining -------------------------------------------------------------------------------


async def test_ai_image_then_upscale_one_of_its_images(
    emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda
) -> None:
    member = emulator.add_member("hal")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("ai-image", {"prompt": "A red fox in the snow", "aspect_ratio": "2x3"}, user=member)
    job_id = await started_job(ix)
    message = await result(ix, job_id)
    assert fake.creates("ai/image")[0].json == {"prompt": "A red fox in the snow", "aspectRatio": "2x3"}
    pictures = list(attached(emulator, message).values())
    assert [open_image(p).size for p in pictures] == [(512, 768), (512, 768)]
    assert custom_ids(message)[:3] == [f"ej:mp-col:{job_id}", f"ej:mp-pbn:{job_id}", f"ej:mp-up:{job_id}"]
    # Two images: the button asks which one.
    pressed = await emulator.press_button(message, f"ej:mp-up:{job_id}", user=member)
    await pressed.response()
    assert pressed.ephemeral
    picker = await pressed.wait_original(lambda m: bool(m.get("components")))
    assert "2 images" in picker["content"]
    picked = await emulator.select(picker, f"ej:mp-pick:{job_id}:mp-up", ["1"], user=member)
    child_id = await started_job(picked)
    upscaled = await result(picked, child_id)
    (create,) = fake.creates("image/upscale")
    assert create.files["image"][2] == pictures[1], "the chosen result image is the new job's input"
    assert create.form == {"upscale": "4"}
    (big,) = attached(emulator, upscaled).values()
    assert open_image(big).size == (2048, 3072)
    child = await job(easel, child_id)
    assert child.parent_job == job_id
    assert child.feature == "upscale"
    assert await credits(easel, emulator, member) == before - 1 - 2


async def test_chaining_from_a_single_image_result_starts_at_once_for_whoever_presses(
    emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda
) -> None:
    owner, other = emulator.add_member("ivy"), emulator.add_member("jay")
    ix = await emulator.invoke(
        "ai-filter", {"filter": "artistic", "strength": 0.7}, user=owner, attachments=png_attachment()
    )
    job_id = await started_job(ix)
    message = await result(ix, job_id)
    assert fake.creates("image/filter")[0].form == {"filterType": "artistic", "strength": "0.7"}
    (filtered,) = attached(emulator, message).values()
    other_before = await credits(easel, emulator, other)

    pressed = await emulator.press_button(message, f"ej:mp-col:{job_id}", user=other)
    child_id = await started_job(pressed)
    await result(pressed, child_id)
    assert fake.creates("coloring")[0].files["image"][2] == filtered
    assert fake.creates("coloring")[0].form == {"version": "v2", "type": "v2_general"}

    pressed = await emulator.press_button(message, f"ej:mp-pbn:{job_id}", user=other)
    pbn_id = await started_job(pressed)
    await result(pressed, pbn_id)
    assert fake.creates("pbn")[0].files["image"][2] == filtered
    for child_id_ in (child_id, pbn_id):
        child = await job(easel, child_id_)
        assert (child.parent_job, child.user_id) == (job_id, other.id)
    assert await credits(easel, emulator, other) == other_before - 1 - 3


# --- upscale and filter --------------------------------------------------------------------------------


async def test_upscale_explains_when_4x_will_be_2x(
    emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda
) -> None:
    member = emulator.add_member("kai")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("upscale", {"factor": 4}, user=member, attachments=png_attachment(images.png(1200, 300)))
    job_id = await started_job(ix)
    note = await ix.wait_followup(lambda m: "2x" in m["content"] and not m.get("embeds"))
    assert "1200×300 px" in note["content"]
    assert "larger than 1000 px by 2x only" in note["content"]
    (big,) = attached(emulator, await result(ix, job_id)).values()
    assert fake.creates("image/upscale")[0].form == {"upscale": "2"}
    assert open_image(big).size == (2400, 600)
    # A small image (HEIC here) gets its 4x, and no note.
    photo = images.heic(100, 80)
    ix = await emulator.invoke(
        "upscale", {"factor": 4}, user=member, attachments={"image": Attachment(photo, "phone.heic", "image/heic")}
    )
    job_id = await started_job(ix)
    (big,) = attached(emulator, await result(ix, job_id)).values()
    assert open_image(big).size == (400, 320)
    assert fake.creates("image/upscale")[1].form == {"upscale": "4"}
    assert fake.creates("image/upscale")[1].files["image"][2] == photo
    assert not [m for m in ix.followups if m["content"].startswith("ℹ️")]
    assert await credits(easel, emulator, member) == before - 4


async def test_ai_filter_suggests_filter_types(emulator: DiscordEmulator, easel: Easel) -> None:
    choices = await emulator.autocomplete("ai-filter", {"filter": "water"}, focused="filter")
    assert [c["value"] for c in choices] == ["water", "painting-watercolor"]
    choices = await emulator.autocomplete("ai-filter", {"filter": ""}, focused="filter")
    assert choices[0]["value"] == "artistic"
    assert len(choices) <= 25


# --- input validation: each refusal is ephemeral, makes no job and costs nothing ----------------------


@pytest.mark.parametrize(
    ("command", "options", "upload", "message"),
    [
        ("coloring photo", {}, Attachment(b"hello, not an image", "photo.png", "image/png"), "is not an image"),
        ("coloring photo", {}, Attachment(images.render(64, 64, fmt="GIF"), "a.gif", "image/gif"), "is a GIF file"),
        (
            "ai-filter",
            {"filter": "artistic"},
            Attachment(b"\0" * (21 * MB), "huge.png", "image/png"),
            "the limit is 20.0 MB",
        ),
        ("upscale", {}, Attachment(images.png(4001, 20), "wide.png", "image/png"), "the most allowed is 4000×4000"),
        (
            "ai-filter",
            {"filter": "art deco"},
            Attachment(images.png(), "a.png", "image/png"),
            "`filter`: a filter type is one word",
        ),
    ],
)
async def test_bad_attachments_and_options_are_refused(
    emulator: DiscordEmulator,
    easel: Easel,
    fake: FakeMimiPanda,
    command: str,
    options: dict[str, Any],
    upload: Attachment,
    message: str,
) -> None:
    member = emulator.add_member("lou")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke(command, options, user=member, attachments={"image": upload})
    assert message in await refusal(ix)
    await no_job_was_made(easel, emulator, member, fake)
    assert await credits(easel, emulator, member) == before


async def test_prompts_are_checked_by_the_bot_too(emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda) -> None:
    member = emulator.add_member("max")
    for command, options in (
        ("ai-image", {"prompt": "  ab  "}),
        ("coloring prompt", {"prompt": "   x   "}),
    ):
        ix = await emulator.invoke(command, options, user=member)
        assert "the prompt needs at least 3 characters" in await refusal(ix)
    await no_job_was_made(easel, emulator, member, fake)


# --- failures are refunded -----------------------------------------------------------------------------


async def test_content_policy_and_failed_jobs_are_refunded(
    emulator: DiscordEmulator, easel: Easel, fake: FakeMimiPanda
) -> None:
    member = emulator.add_member("ned")
    before = await credits(easel, emulator, member)
    ix = await emulator.invoke("ai-image", {"prompt": "Mickey at the beach"}, user=member)
    job_id = await started_job(ix)
    notice = await ix.wait_followup(lambda m: job_id in m["content"])
    assert "content policy" in notice["content"]
    assert "went back to you" in notice["content"]
    assert (await job(easel, job_id)).status is JobStatus.FAILED
    ix = await emulator.invoke("coloring photo", {}, user=member, attachments=png_attachment(name="FAILME.png"))
    job_id = await started_job(ix)
    notice = await ix.wait_followup(lambda m: job_id in m["content"])
    assert "could not complete this job: Failed to generate image" in notice["content"]
    await eventually(lambda: _delivered(easel, job_id))
    assert await credits(easel, emulator, member) == before


async def _delivered(easel: Easel, job_id: str) -> bool:
    found = await easel.bot.jobs.store.get(job_id)
    return found is not None and found.delivery is Delivery.DELIVERED
