"""Flair style models end to end: the real bot through the Discord emulator, against the fake Flair server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from bot.jobs.engine import ProviderLimits
from bot.jobs.model import JobStatus
from bot.providers.flair import IMAGE, TRAINING, FlairAdapter
from bot.quotas import QuotaLedger
from bot.settings import SettingsError, load_settings
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator, Member
from tests.emulator.interaction import Interaction
from tests.emulator.models import Attachment
from tests.fakes import images
from tests.fakes.flair import FakeFlair
from tests.harness import Easel, eventually

KEY = "fl_live_123"
ALLOWANCE = 1000
TRAIN_COST = 50
# Small sets keep the tests fast; the rules are the same as with the defaults (5 / 10 / 30).
MIN, RECOMMENDED, MAX = 3, 4, 6


@pytest.fixture
async def fake() -> AsyncIterator[FakeFlair]:
    server = FakeFlair(api_key=KEY, prediction_seconds=0.0)
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flair trainings are first checked after 30 s in production; here at once (restarts included)."""
    monkeypatch.setattr(FlairAdapter, "first_check_s", {TRAINING: 0.02, IMAGE: 0.02})


async def start(easel_factory: EaselFactory, fake: FakeFlair, **settings: Any) -> Easel:
    limits = ProviderLimits(min_poll_s=0.02, max_poll_s=0.1, retry_base_s=0.01)
    return await easel_factory(
        flair_api_key=KEY,
        flair_base_url=fake.base_url,
        style_min_images=MIN,
        style_recommended_images=RECOMMENDED,
        style_max_images=MAX,
        quota_server_allowance=ALLOWANCE,
        provider_limits_override={"flair": limits},
        **settings,
    )


def picture(who: str, n: int, fmt: str = "png", size: int = 300) -> Attachment:
    render = {"png": images.png, "jpeg": images.jpeg, "webp": images.webp}[fmt]
    return Attachment(render(size, size, label=f"{who} {n}"), f"{who}{n}.{fmt}", f"image/{fmt}")


async def answer(ix: Interaction) -> dict[str, Any]:
    await ix.response()
    return await ix.wait_original(timeout=10)


async def run(emulator: DiscordEmulator, command: str, member: Member, **options: Any) -> dict[str, Any]:
    ix = await emulator.invoke(command, options, user=member)
    message = await answer(ix)
    assert ix.ephemeral, f"/{command} answers only the member"
    return message


async def add(emulator: DiscordEmulator, member: Member, style: str, *pictures: Attachment) -> dict[str, Any]:
    attachments = {f"image{n + 1}": p for n, p in enumerate(pictures)}
    ix = await emulator.invoke("style add", {"style": style}, user=member, attachments=attachments)
    return await answer(ix)


def style_id_in(text: str) -> str:
    return text.split("(`")[1].split("`)")[0]


def job_id_in(text: str) -> str:
    return text.split("job `")[1].split("`")[0]


def button_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


def button_labels(message: dict[str, Any]) -> list[str]:
    return [c.get("label", "") for row in message.get("components", []) for c in row["components"]]


async def create(emulator: DiscordEmulator, member: Member, name: str, *, count: int = 0, **options: Any) -> str:
    made = await run(emulator, "style create", member, name=name, **options)
    style = style_id_in(made["content"])
    if count:
        reply = await add(emulator, member, style, *(picture(f"{member.name}{name}", n) for n in range(count)))
        assert f"now {count}" in reply["content"]
    return style


async def start_training(
    emulator: DiscordEmulator, member: Member, style: str, **options: Any
) -> tuple[Interaction, str]:
    confirm = await run(emulator, "style train", member, style=style, **options)
    (button,) = button_ids(confirm)
    pressed = await emulator.press_button(confirm, button, user=member)
    status = await answer(pressed)
    return pressed, job_id_in(status["content"])


def deliveries(emulator: DiscordEmulator, ix: Interaction, job_id: str) -> list[dict[str, Any]]:
    found = [*ix.followups, *emulator.messages(emulator.channel_id)]
    return [m for m in found if m.get("embeds") and m["embeds"][0]["footer"]["text"].startswith(f"Job {job_id}")]


async def ready(emulator: DiscordEmulator, ix: Interaction, job_id: str) -> dict[str, Any]:
    return await emulator.wait_for(lambda: next(iter(deliveries(emulator, ix, job_id)), None), timeout=10)


async def failure(emulator: DiscordEmulator, ix: Interaction, job_id: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        found = [*ix.followups, *emulator.messages(emulator.channel_id)]
        return next((m for m in found if f"job `{job_id}`" in m["content"] and "❌" in m["content"]), None)

    return await emulator.wait_for(find, timeout=10)


async def trained(
    emulator: DiscordEmulator, easel: Easel, fake: FakeFlair, member: Member, style: str
) -> tuple[str, str]:
    """Train a style to the end; returns (job id, trigger word)."""
    ix, job_id = await start_training(emulator, member, style)
    await eventually(lambda: status_is(easel, job_id, JobStatus.RUNNING))
    fake.advance(fake.training_seconds + 1)
    done = await ready(emulator, ix, job_id)
    word = done["content"].split("trigger word is **")[1].split("**")[0]
    return job_id, word


async def status_is(easel: Easel, job_id: str, status: JobStatus) -> bool:
    job = await easel.bot.jobs.store.get(job_id)
    return job is not None and job.status is status


async def ended(easel: Easel, job_id: str) -> bool:
    job = await easel.bot.jobs.store.get(job_id)
    return job is not None and job.status.final


async def generate(emulator: DiscordEmulator, member: Member, **options: Any) -> tuple[Interaction, str, str]:
    """Returns the interaction, the job id and the final prompt the member was shown."""
    ix = await emulator.invoke("style generate", options, user=member)
    job_id = job_id_in((await answer(ix))["content"])
    shown = await ix.wait_followup(lambda m: "prompt sent to Flair" in m["content"])
    return ix, job_id, shown["content"].split("“")[1].split("”")[0]


async def spent(easel: Easel, member: Member, emulator: DiscordEmulator) -> int:
    ledger = easel.bot.ledger
    assert isinstance(ledger, QuotaLedger)
    balance = await ledger.balance(emulator.guild_id, member.id, [])
    return balance.spent + balance.reserved


# ---------------------------------------------------------------- the whole flow


async def test_whole_flow_with_a_restart_while_training(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeFlair
) -> None:
    easel = await start(easel_factory, fake)
    ana = emulator.add_member("ana")
    made = await run(emulator, "style create", ana, name="Ink wash")
    style = style_id_in(made["content"])
    (model,) = fake.models.values()
    assert model.display_name == "Ink wash", "creating the style creates the Flair model (free)"
    assert await spent(easel, ana, emulator) == 0

    reply = await add(
        emulator, ana, style, picture("ana", 0, "png"), picture("ana", 1, "jpeg"), picture("ana", 2, "webp")
    )
    assert "Added 3 images: now 3" in reply["content"]
    post = emulator.user_message("my sketches", user=ana, attachments=[picture("ana", 3), picture("ana", 4)])
    ix = await emulator.invoke_message_command("Add to my training set", post, user=ana)
    assert "now 5" in (await answer(ix))["content"]

    review = await run(emulator, "style review", ana, style=style)
    assert "**5** images" in review["content"]
    with Image.open(io.BytesIO(emulator.file_bytes(review["attachments"][0]))) as sheet:
        assert sheet.size == (5 * 160, 160), "five numbered thumbnails"
    removed = await run(emulator, "style remove", ana, style=style, numbers="4")
    assert "**4** images" in removed["content"]

    confirm = await run(emulator, "style train", ana, style=style, strength=9, speed="fast")
    assert f"costs **{TRAIN_COST} credits**" in confirm["content"]
    assert button_labels(confirm) == [f"Train · {TRAIN_COST} credits"], "the cost is shown before training"
    assert not fake.trainings, "nothing is started before the member confirms"
    pressed = await emulator.press_button(confirm, button_ids(confirm)[0], user=ana)
    job_id = job_id_in((await answer(pressed))["content"])
    await eventually(lambda: status_is(easel, job_id, JobStatus.RUNNING))
    (training,) = fake.trainings.values()
    assert (training.strength, training.speed) == (9, "fast")
    assert len(fake.uploads_to(model.id)) == 4
    # Uploads keep each studio's format: PNG, JPEG and WebP as they came (metadata dropped).
    assert {d.content_type for d in fake.data.values()} == {"image/png", "image/jpeg", "image/webp"}

    progress = await run(emulator, "style trainings", ana, style=style)
    assert "training" in progress["embeds"][0]["description"]
    await easel.restart()
    fake.advance(fake.training_seconds + 1)
    done = await ready(emulator, pressed, job_id)
    word = fake.trainings[training.id].trigger_word
    assert f"trigger word is **{word}**" in done["content"]
    assert done["attachments"] == [], "the training images are not posted in the channel"
    assert len(fake.trainings) == 1, "the restart did not train twice"
    assert len(fake.uploads_to(model.id)) == 4, "nor upload twice"
    history = await run(emulator, "style trainings", ana, style=style)
    assert f"trigger word **{word}**" in history["embeds"][0]["description"]
    assert await spent(easel, ana, emulator) == TRAIN_COST

    choices = await emulator.autocomplete("style generate", {"prompt": "x", "style1": ""}, focused="style1", user=ana)
    assert [c["value"] for c in choices] == [style]
    ix, image_job, final = await generate(
        emulator, ana, prompt="a lighthouse at dusk", style1=style, width=768, height=512, count=2, format="png"
    )
    assert final == f"a lighthouse at dusk, in the style of {word}", "the trigger word is put in, and shown"
    result = await ready(emulator, ix, image_job)
    assert len(result["attachments"]) == 2
    with Image.open(io.BytesIO(emulator.file_bytes(result["attachments"][0]))) as made_image:
        assert (made_image.format, made_image.size) == ("PNG", (768, 512))
    (prediction,) = fake.predictions.values()
    assert prediction.trigger_words_in_prompt == {model.id: True}
    assert prediction.body["image_size"] == {"width": 768, "height": 512}
    labels = button_labels(result)
    assert "Again · 1 credit per image" in labels
    assert "More like this · 1 credit per image" in labels
    assert any(label.startswith("Upscale · ") and "credits" in label for label in labels)
    assert f"ej:upscale:{image_job}" in button_ids(result)

    # The member writing the trigger word themselves: it is not added twice.
    _, _, own = await generate(emulator, ana, prompt=f"{word} harbour", style1=style)
    assert own == f"{word} harbour"
    _, _, typed = await generate(emulator, ana, prompt=f"{word.lower()} harbour", style1=style)
    assert typed == f"{word} harbour", "typed in another case: written as Flair gave it, not added twice"

    await easel.restart()  # the result's buttons are resolved from the database: they outlive the process
    again = await emulator.press_button(result, f"ej:sagain:{image_job}", user=ana)
    again_job = job_id_in((await answer(again))["content"])
    await ready(emulator, again, again_job)
    more = await emulator.press_button(result, f"ej:smore:{image_job}", user=ana)
    more_job = job_id_in((await answer(more))["content"])
    await ready(emulator, more, more_job)
    seeds = [p.body["seed"] for p in fake.predictions.values()]
    assert seeds[3] != seeds[0], "Again: a new seed"
    assert seeds[4] == seeds[0], "More like this: the same seed"
    bodies = list(fake.predictions.values())
    assert bodies[4].body.get("guidance_scale") == 5.5, "...with a small change: guidance nudged"
    assert "guidance_scale" not in bodies[0].body
    stored = await easel.bot.jobs.store.get(more_job)
    assert stored is not None
    assert stored.parent_job == image_job
    assert stored.credits == 2, "each image is charged"


async def test_a_crash_mid_upload_resumes_from_the_database_log(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeFlair
) -> None:
    easel = await start(easel_factory, fake)
    ana = emulator.add_member("ana")
    ink = await create(emulator, ana, "Ink", count=3)
    setattr(easel.bot.jobs.adapters["flair"], "upload_parallelism", 1)  # noqa: B010
    fake.slow_next(0, count=2, route="upload_data")  # two uploads go through...
    fake.slow_next(3, route="upload_data")  # ...the third hangs, and the bot dies meanwhile
    ix, job_id = await start_training(emulator, ana, ink)
    (model,) = fake.models.values()
    await emulator.wait_for(lambda: len(fake.uploads_to(model.id)) == 3, timeout=10)
    await easel.bot.jobs.scheduler.stop(grace=0)  # a crash: the submit is cut mid-upload
    await easel.restart()
    await eventually(lambda: status_is(easel, job_id, JobStatus.RUNNING), within=10)
    # The two recorded uploads were not sent again (only the one cut off); the paid start went out once.
    assert len(fake.uploads_to(model.id)) == 4
    assert len(fake.trainings) == 1
    fake.advance(fake.training_seconds + 1)
    await ready(emulator, ix, job_id)


# ---------------------------------------------------------------- blends and server styles


async def test_blend_of_a_server_style_and_a_members_style(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeFlair
) -> None:
    easel = await start(easel_factory, fake)
    ida = emulator.add_member("ida", admin=True)
    ana = emulator.add_member("ana")
    bob = emulator.add_member("bob")
    refused = await run(emulator, "style create", ana, name="House", server=True)
    assert "Only server admins" in refused["content"]
    house = await create(emulator, ida, "House", count=3, server=True)
    _, house_word = await trained(emulator, easel, fake, ida, house)
    ink = await create(emulator, ana, "Ink", count=3)
    _, ink_word = await trained(emulator, easel, fake, ana, ink)

    # Bob sees the server's trained style (and not Ana's), may use it, may not change it.
    choices = await emulator.autocomplete("style generate", {"prompt": "x", "style1": ""}, focused="style1", user=bob)
    assert [c["value"] for c in choices] == [house]
    ix, job_id, final = await generate(emulator, bob, prompt="a cat", style1=house)
    await ready(emulator, ix, job_id)
    assert house_word in final
    no = await add(emulator, bob, house, picture("bob", 0))
    assert "only server admins can change it" in no["content"]
    assert "only server admins" in (await run(emulator, "style rename", bob, style=house, name="Mine"))["content"]

    # Ana blends the server's style with her own, by weight.
    ix, job_id, final = await generate(
        emulator, ana, prompt="a harbour", style1=house, weight1=0.6, style2=ink, weight2=1.4, seed=42
    )
    await ready(emulator, ix, job_id)
    assert final == f"a harbour, in the style of {house_word} and {ink_word}"
    prediction = list(fake.predictions.values())[-1]
    configs = prediction.body["scaleConfigs"]
    house_model = next(m for m in fake.models.values() if m.display_name == "House")
    ink_model = next(m for m in fake.models.values() if m.display_name == "Ink")
    assert configs["1"]["modelId"] == house_model.id
    assert configs["1"]["scale"] == 0.6
    assert configs["2"]["modelId"] == ink_model.id
    assert configs["2"]["scale"] == 1.4
    assert prediction.body["seed"] == 42
    assert prediction.trigger_words_in_prompt == {house_model.id: True, ink_model.id: True}


async def test_another_member_is_refused_every_action_on_a_members_style(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeFlair
) -> None:
    easel = await start(easel_factory, fake)
    ana = emulator.add_member("ana")
    bob = emulator.add_member("bob")
    ink = await create(emulator, ana, "Ink", count=3)
    train_job, _ = await trained(emulator, easel, fake, ana, ink)
    ix, image_job, _ = await generate(emulator, ana, prompt="a boat", style1=ink)
    result = await ready(emulator, ix, image_job)
    requests_before = len(fake.requests)

    not_yours = "No such style model"
    assert not_yours in (await add(emulator, bob, ink, picture("bob", 0)))["content"]
    for command, options in [
        ("style review", {}),
        ("style remove", {"numbers": "1"}),
        ("style train", {}),
        ("style trainings", {}),
        ("style cancel", {}),
        ("style rename", {"name": "Bob's now"}),
        ("style delete", {}),
    ]:
        reply = await run(emulator, command, bob, style=ink, **options)
        assert not_yours in reply["content"], command
    assert not_yours in (await run(emulator, "style generate", bob, prompt="x", style1=ink))["content"]
    # The confirm button is on Ana's ephemeral answer: only she sees it. The result's buttons are public.
    for button in (f"ej:sagain:{image_job}", f"ej:smore:{image_job}"):
        pressed = await emulator.press_button(result, button, user=bob)
        reply = await answer(pressed)
        assert pressed.ephemeral
        assert not_yours in reply["content"], button
    # Ana's own message cannot feed Bob's set either (nor Bob's Ana's): only one's own pictures.
    await create(emulator, bob, "Bob style")
    post = emulator.user_message("ana's selfies", user=ana, attachments=[picture("ana", 9)])
    menu = await emulator.invoke_message_command("Add to my training set", post, user=bob)
    assert "Only your own messages" in (await answer(menu))["content"]
    choices = await emulator.autocomplete("style review", {"style": ""}, focused="style", user=bob)
    assert ink not in [c["value"] for c in choices]

    assert await spent(easel, bob, emulator) == 0, "nothing was charged"
    assert [r for r in fake.requests[requests_before:] if r.method != "GET"] == [
        r for r in fake.requests[requests_before:] if r.method == "POST" and r.path.endswith("/models")
    ], "nothing reached Flair but Bob's own model"
    assert fake.trainings[next(iter(fake.trainings))].cancelled is False
    job = await easel.bot.jobs.store.get(train_job)
    assert job is not None
    assert job.status is JobStatus.SUCCEEDED


# ---------------------------------------------------------------- cancel, rename, delete


async def test_cancel_rename_and_delete(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeFlair
) -> None:
    easel = await start(easel_factory, fake)
    ana = emulator.add_member("ana")
    ink = await create(emulator, ana, "Ink", count=3)
    ix, job_id = await start_training(emulator, ana, ink)
    await eventually(lambda: status_is(easel, job_id, JobStatus.RUNNING))
    assert await spent(easel, ana, emulator) == TRAIN_COST
    cancelled = await run(emulator, "style cancel", ana, style=ink)
    assert "Cancelled the training" in cancelled["content"]
    (training,) = fake.trainings.values()
    assert training.cancelled
    await eventually(lambda: ended(easel, job_id))
    stopped = await easel.bot.jobs.store.get(job_id)
    assert stopped is not None
    assert stopped.error_kind == "cancelled"
    assert await spent(easel, ana, emulator) == 0, "a cancelled training is refunded"
    nothing = await run(emulator, "style cancel", ana, style=ink)
    assert "no training in progress" in nothing["content"]

    # Too late: Flair finished it before the cancel arrived; the member is told, it is delivered and billed.
    ix, second = await start_training(emulator, ana, ink)
    await eventually(lambda: status_is(easel, second, JobStatus.RUNNING))
    fake.advance(fake.training_seconds + 1)
    late = await run(emulator, "style cancel", ana, style=ink)
    assert "Too late" in late["content"]
    await ready(emulator, ix, second)
    assert await spent(easel, ana, emulator) == TRAIN_COST

    (model,) = fake.models.values()
    renamed = await run(emulator, "style rename", ana, style=ink, name="Sumi ink")
    assert "Renamed **Ink** to **Sumi ink**" in renamed["content"]
    assert model.display_name == "Sumi ink"
    assert "Sumi ink" in (await run(emulator, "style models", ana))["embeds"][0]["description"]

    removed = await run(emulator, "style remove", ana, style=ink, numbers="1")
    assert "**2** images" in removed["content"]
    assert len(model.data_ids) == 2, "an image already at Flair is deleted there too"

    deleted = await run(emulator, "style delete", ana, style=ink)
    assert "Deleted the style model **Sumi ink**" in deleted["content"]
    assert model.deleted
    assert model.data_ids == [], "its training images are deleted at Flair"
    assert "No such style model" in (await run(emulator, "style review", ana, style=ink))["content"]


async def test_forget_me_removes_styles_images_and_predictions_at_flair(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeFlair
) -> None:
    easel = await start(easel_factory, fake)
    ida = emulator.add_member("ida", admin=True)
    ana = emulator.add_member("ana")
    house = await create(emulator, ida, "House", count=3, server=True)
    _, house_word = await trained(emulator, easel, fake, ida, house)
    ink = await create(emulator, ana, "Ink", count=3)
    await trained(emulator, easel, fake, ana, ink)
    ix, job_id, _ = await generate(emulator, ana, prompt="a boat", style1=ink, style2=house)
    await ready(emulator, ix, job_id)
    ida_ix, ida_job, _ = await generate(emulator, ida, prompt="a house", style1=house)
    await ready(emulator, ida_ix, ida_job)
    files = [easel.bot.jobs.files.input_path(i.sha256) for i in await images_of(easel, ink)]
    assert all(p.exists() for p in files)

    ask = await emulator.invoke("forget-me", user=ana)
    question = await answer(ask)
    press = await emulator.press_button(question, f"eq:forget:{ana.id}", user=ana)
    await press.response()
    ink_model = next(m for m in fake.models.values() if m.display_name == "Ink")
    house_model = next(m for m in fake.models.values() if m.display_name == "House")
    await emulator.wait_for(lambda: ink_model.deleted, timeout=10)
    await emulator.wait_for(lambda: all(p.deleted for p in list(fake.predictions.values())[:1]), timeout=10)
    assert ink_model.data_ids == []
    ana_prediction, ida_prediction = fake.predictions.values()
    assert ana_prediction.deleted
    assert not ida_prediction.deleted, "another member's predictions stay"
    assert not house_model.deleted and house_model.data_ids, "the server's style stays"
    assert await easel.bot.get_cog("Styles").repo.get(ink) is None  # type: ignore[union-attr]
    assert not any(p.exists() for p in files)

    # The admin who trained the server's style leaves too: the style stays usable by everyone.
    ask = await emulator.invoke("forget-me", user=ida)
    press = await emulator.press_button(await answer(ask), f"eq:forget:{ida.id}", user=ida)
    await press.response()
    await emulator.wait_for(lambda: ida_prediction.deleted, timeout=10)
    assert not house_model.deleted
    ix, job_id, final = await generate(emulator, ana, prompt="a tower", style1=house)
    await ready(emulator, ix, job_id)
    assert house_word in final


async def test_forget_me_while_flair_refuses_is_finished_at_flair_later(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeFlair
) -> None:
    easel = await start(easel_factory, fake)
    ana = emulator.add_member("ana")
    ink = await create(emulator, ana, "Ink", count=3)
    await trained(emulator, easel, fake, ana, ink)
    (model,) = fake.models.values()
    fake.fail_next(403, count=1, route="DELETE /models")  # the first deletion at Flair is refused
    ask = await emulator.invoke("forget-me", user=ana)
    press = await emulator.press_button(await answer(ask), f"eq:forget:{ana.id}", user=ana)
    await press.response()
    done = await press.wait_original(lambda m: "Erased" in m["content"], timeout=10)
    assert "went wrong" not in done["content"], "the member's erase is not failed by Flair"
    assert await easel.bot.get_cog("Styles").repo.get(ink) is None  # type: ignore[union-attr]
    assert not model.deleted and model.data_ids, "Flair refused: still there, and still owed"

    await easel.restart()  # owed deletions are carried out at start
    await emulator.wait_for(lambda: model.deleted, timeout=10)
    assert model.data_ids == []


async def images_of(easel: Easel, style_id: str) -> list[Any]:
    repo = easel.bot.get_cog("Styles").repo  # type: ignore[union-attr]
    style = await repo.get(style_id)
    training_set = await repo.training_set(style)
    return list(await repo.sets.images(training_set.id))


# ---------------------------------------------------------------- validation and refunds


async def test_each_validation_rule_is_told_and_charges_nothing(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeFlair
) -> None:
    easel = await start(easel_factory, fake)
    ana = emulator.add_member("ana")
    ink = await create(emulator, ana, "Ink", count=2)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("style create", {"name": "ink"}, "already have a style named **ink**"),
        ("style create", {"name": "***"}, "plain letters"),
        ("style train", {"style": ink}, "training needs at least 3"),
        ("style generate", {"prompt": "x", "style1": ink}, "cannot make images yet"),
        ("style generate", {"prompt": "x", "style1": "nosuch"}, "No such style model you can use: `nosuch`"),
        ("style remove", {"style": ink, "numbers": "2, 9"}, "images 1 to 2"),
        ("style remove", {"style": ink, "numbers": "two"}, "not a image number"),
        ("style review", {"style": "nosuch"}, "No such style model of yours: `nosuch`"),
        ("style cancel", {"style": ink}, "no training in progress"),
    ]
    for command, options, expected in cases:
        reply = await run(emulator, command, ana, **options)
        assert expected in reply["content"], (command, options, reply["content"])
    small = await add(emulator, ana, ink, picture("ana", 7, size=100))
    assert "No images were added" in small["content"]
    assert "at least 256" in small["content"]
    again = await add(emulator, ana, ink, picture("anaInk", 0))
    assert "Already in your set" in again["content"]
    no_images = emulator.user_message("words only", user=ana)
    menu = await emulator.invoke_message_command("Add to my training set", no_images, user=ana)
    assert "no attached images" in (await answer(menu))["content"]
    full = await add(emulator, ana, ink, *(picture("more", n) for n in range(5)))
    assert "now 6" in full["content"]
    assert "the set is full (6 images)" in full["content"]

    await trained(emulator, easel, fake, ana, ink)
    spent_before = await spent(easel, ana, emulator)
    for options, expected in [
        ({"style2": ink}, "chosen twice"),
        ({"weight1": 0.0}, "Every weight is 0"),
        ({"prompt": "x" * 1500, "style2": None}, None),
    ]:
        merged = {"prompt": "a cat", "style1": ink, **{k: v for k, v in options.items() if v is not None}}
        reply = await run(emulator, "style generate", ana, **merged)
        if expected is not None:
            assert expected in reply["content"], options
    assert await spent(easel, ana, emulator) == spent_before + 1, "only the valid long prompt was charged"
    await emulator.wait_for(lambda: len(fake.predictions) == 1)


async def test_failures_are_refunded(emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeFlair) -> None:
    easel = await start(easel_factory, fake)
    ana = emulator.add_member("ana")
    ink = await create(emulator, ana, "Ink", count=3)
    ix, job_id = await start_training(emulator, ana, ink)
    await eventually(lambda: status_is(easel, job_id, JobStatus.RUNNING))
    (training,) = fake.trainings.values()
    fake.force_status(training.id, "failed")
    failed = await failure(emulator, ix, job_id)
    assert f"{TRAIN_COST} credits went back to you" in failed["content"]
    assert await spent(easel, ana, emulator) == 0
    assert "not yet" in str((await run(emulator, "style trainings", ana, style=ink))["embeds"][0]["fields"])

    await trained(emulator, easel, fake, ana, ink)
    before = await spent(easel, ana, emulator)
    fake.fail_next(500, count=10, route="POST /predictions")
    ix = await emulator.invoke("style generate", {"prompt": "a cat", "style1": ink, "count": 3}, user=ana)
    image_job = job_id_in((await answer(ix))["content"])
    broken = await failure(emulator, ix, image_job)
    assert "3 credits went back to you" in broken["content"]
    assert await spent(easel, ana, emulator) == before


# ---------------------------------------------------------------- FLAIR_PATHS


def test_flair_paths_setting_is_read_from_json_and_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAIR_PATHS", '{"rename_model": "PUT /models/{model_id}/name"}')
    assert load_settings(_env_file=None).flair_paths == {"rename_model": "PUT /models/{model_id}/name"}
    monkeypatch.setenv("FLAIR_PATHS", "")
    assert load_settings(_env_file=None).flair_paths == {}
    for bad, problem in [('{"nope": "GET /x"}', "unknown operation"), ("{bad", "FLAIR_PATHS")]:
        monkeypatch.setenv("FLAIR_PATHS", bad)
        with pytest.raises(SettingsError, match=problem):
            load_settings(_env_file=None)


async def test_a_corrected_path_is_used(emulator: DiscordEmulator, easel_factory: EaselFactory) -> None:
    moved = {"rename_model": "PUT /models/{model_id}/name"}
    async with FakeFlair(api_key=KEY, routes=moved) as fake:
        await start(easel_factory, fake, flair_paths=moved)
        ana = emulator.add_member("ana")
        ink = await create(emulator, ana, "Ink")
        renamed = await run(emulator, "style rename", ana, style=ink, name="Sumi")
        assert "Renamed" in renamed["content"]
        (model,) = fake.models.values()
        assert model.display_name == "Sumi"
        assert any(r.method == "PUT" and r.path.endswith("/name") for r in fake.requests)
