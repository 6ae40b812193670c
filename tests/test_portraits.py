"""Portrait models end to end: the real bot through the Discord emulator, against the fake mimpi server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.jobs.engine import ProviderLimits
from bot.jobs.model import Delivery, JobStatus
from bot.portraits import PortraitRepository
from bot.providers.mimpi import MimpiAdapter
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator, Member
from tests.emulator.interaction import Interaction
from tests.emulator.models import Attachment
from tests.fakes import images
from tests.fakes.flair import FakeFlair
from tests.fakes.mimpi import FakeMimpi
from tests.harness import Easel, eventually, free_port

LIVE = "mk_live_123"
TEST = "mk_test_123"
NO_CARD = "mk_nocard_123"
# Small sets keep the tests fast; the rules are the same as with the defaults (10 / 20 / 40).
MIN, RECOMMENDED, MAX = 3, 5, 6


@pytest.fixture
async def fake() -> AsyncIterator[FakeMimpi]:
    server = FakeMimpi(api_key=LIVE, test_keys={TEST}, no_card_keys={NO_CARD})
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


async def start(
    easel_factory: EaselFactory, fake: FakeMimpi, *, key: str = LIVE, max_models: int = 30, **settings: Any
) -> Easel:
    limits = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01, max_active={"models": max_models})
    return await easel_factory(
        mimpi_api_key=key,
        mimpi_base_url=fake.base_url,
        mimpi_max_concurrent_models=max_models,
        portrait_min_images=MIN,
        portrait_recommended_images=RECOMMENDED,
        portrait_max_images=MAX,
        quota_server_allowance=1000,
        provider_limits_override={"mimpi": limits},
        **settings,
    )


def photo(who: str, n: int, fmt: str = "png", size: int = 300) -> Attachment:
    render = {"png": images.png, "jpeg": images.jpeg, "webp": images.webp}[fmt]
    return Attachment(render(size, size, label=f"{who} {n}"), f"{who}{n}.{fmt}", f"image/{fmt}")


async def answer(ix: Interaction) -> dict[str, Any]:
    """What the member finally sees as the command's answer (immediate, or after a defer)."""
    await ix.response()
    return await ix.wait_original(timeout=10)


async def run(emulator: DiscordEmulator, command: str, member: Member, **options: Any) -> dict[str, Any]:
    ix = await emulator.invoke(command, options, user=member)
    message = await answer(ix)
    assert ix.ephemeral, f"/{command} answers only the member"
    return message


async def add(emulator: DiscordEmulator, member: Member, *photos: Attachment) -> dict[str, Any]:
    attachments = {f"image{n + 1}": p for n, p in enumerate(photos)}
    ix = await emulator.invoke("portrait add", {}, user=member, attachments=attachments)
    return await answer(ix)


async def make_set(emulator: DiscordEmulator, member: Member, count: int, subject: str = "man") -> None:
    await run(emulator, "portrait new", member, subject=subject)
    reply = await add(emulator, member, *(photo(member.name, n) for n in range(count)))
    assert f"now {count}" in reply["content"]


def job_id_in(text: str) -> str:
    return text.split("job `")[1].split("`")[0]


async def train(emulator: DiscordEmulator, member: Member) -> tuple[Interaction, str]:
    ix = await emulator.invoke("portrait train", {}, user=member)
    status = await answer(ix)
    return ix, job_id_in(status["content"])


def deliveries(emulator: DiscordEmulator, ix: Interaction, job_id: str) -> list[dict[str, Any]]:
    found = [*ix.followups, *emulator.messages(emulator.channel_id)]
    return [m for m in found if m.get("embeds") and m["embeds"][0]["footer"]["text"].startswith(f"Job {job_id}")]


async def ready(emulator: DiscordEmulator, ix: Interaction, job_id: str) -> dict[str, Any]:
    return await emulator.wait_for(lambda: next(iter(deliveries(emulator, ix, job_id)), None), timeout=10)


def button_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


def requests(fake: FakeMimpi, method: str, prefix: str) -> int:
    return sum(1 for r in fake.requests if r.method == method and r.path.startswith(prefix))


async def test_whole_flow_with_callbacks(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    port = free_port()
    easel = await start(easel_factory, fake, http_port=port, public_url=f"http://127.0.0.1:{port}")
    ana = emulator.add_member("ana")
    started = await run(emulator, "portrait new", ana, subject="woman", name="Ana")
    assert "Started **Ana**" in started["content"]
    reply = await add(emulator, ana, photo("ana", 0, "png"), photo("ana", 1, "jpeg"), photo("ana", 2, "webp"))
    assert "Added 3 photos: now 3" in reply["content"]
    # From any message with photos, through the message command (no message-content intent).
    post = emulator.user_message("holiday", user=ana, attachments=[photo("ana", 3), photo("ana", 4)])
    ix = await emulator.invoke_message_command("Add to my training set", post, user=ana)
    assert "now 5" in (await answer(ix))["content"]

    # Review: the count and a numbered contact sheet; remove one; train with the button.
    review = await run(emulator, "portrait review", ana)
    assert "**5** photos" in review["content"]
    with Image.open(io.BytesIO(emulator.file_bytes(review["attachments"][0]))) as sheet:
        assert sheet.size == (5 * 160, 160), "five thumbnails in one row"
    removed = await run(emulator, "portrait remove", ana, numbers="2")
    assert "**4** photos" in removed["content"]
    train_button = next(c for c in button_ids(removed) if c.startswith("pt:train:"))
    pressed = await emulator.press_button(removed, train_button, user=ana)
    status = await answer(pressed)
    job_id = job_id_in(status["content"])
    await pressed.wait_followup(lambda m: "better results" in m["content"])  # 4 < 5 recommended

    trained = await ready(emulator, pressed, job_id)
    assert f"<@{ana.id}>" in trained["content"]
    assert "portrait model is ready" in trained["content"]
    assert "sks woman" in trained["content"]
    assert trained["attachments"] == [], "the member's photos are not posted in the channel"
    (model,) = fake.models.values()
    assert model.subject == "woman"
    assert model.callback_url is not None
    assert model.callback_url.startswith(f"{easel.web_url}/callbacks/mimpi/{job_id}/")
    assert len(model.image_ids) == 4
    assert fake.callbacks[-1].status == 202
    # With callbacks, polling is only a safety net minutes away: the callback alone finished it.
    assert requests(fake, "GET", "/api/model/") == 1

    choices = await emulator.autocomplete("portrait generate", {"model": ""}, focused="model", user=ana)
    assert [c["value"] for c in choices] == [job_id]
    ix = await emulator.invoke(
        "portrait generate", {"model": job_id, "prompt": "in soft light, portrait", "count": 2}, user=ana
    )
    portrait_job = job_id_in((await answer(ix))["content"])
    result = await ready(emulator, ix, portrait_job)
    assert len(result["attachments"]) == 2
    for attachment in result["attachments"]:
        with Image.open(io.BytesIO(emulator.file_bytes(attachment))) as image:
            assert image.format == "JPEG"
    (prompt,) = fake.prompts.values()
    assert prompt.prompt == "sks woman in soft light, portrait", "the subject token is put in front"
    assert prompt.model_id == model.id
    assert prompt.callback_url is not None

    more = await emulator.press_button(result, f"ej:pmore:{portrait_job}", user=ana)
    again_job = job_id_in((await answer(more))["content"])
    await ready(emulator, more, again_job)
    assert [p.prompt for p in fake.prompts.values()] == [prompt.prompt, prompt.prompt]
    again = await easel.bot.jobs.store.get(again_job)
    assert again is not None
    assert again.parent_job == portrait_job
    assert again.credits == 2, "more like this is a new, charged job"


async def test_polling_and_a_restart_while_training_deliver_exactly_once(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    fake.auto_advance = False
    easel = await start(easel_factory, fake)
    ben = emulator.add_member("ben")
    await make_set(emulator, ben, 3)
    ix, job_id = await train(emulator, ben)
    model_id = await emulator.wait_for(lambda: next(iter(fake.models), None))
    assert fake.models[model_id].callback_url is None, "no public URL: no callback, polling instead"
    fake.set_progress(model_id, 40)
    await eventually(lambda: _status(easel, job_id, JobStatus.RUNNING))
    await easel.restart()
    await fake.complete_model(model_id)
    trained = await ready(emulator, ix, job_id)
    assert "portrait model is ready" in trained["content"]
    await eventually(lambda: _status(easel, job_id, JobStatus.SUCCEEDED, delivered=True))
    await easel.restart()
    await easel.restart()
    assert len(deliveries(emulator, ix, job_id)) == 1
    assert requests(fake, "POST", "/api/model") == 1
    assert requests(fake, "PUT", "/upload/") == 3

    # After the restarts the model is listed as ready, with its 30-day expiry.
    listing = await run(emulator, "portrait models", ben)
    line = listing["embeds"][0]["description"]
    assert f"`{job_id}`" in line
    assert "ready — expires <t:" in line


async def test_a_crash_during_uploads_resumes_without_uploading_twice(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    fake.auto_advance = False
    easel = await start(easel_factory, fake)
    cid = emulator.add_member("cid")
    await make_set(emulator, cid, 3)
    easel.bot.jobs.adapters["mimpi"].upload_parallelism = 1  # type: ignore[attr-defined]
    fake.slow_next(0, count=2, route="PUT /upload")  # two uploads go through...
    fake.slow_next(3, route="PUT /upload")  # ...the third hangs, and the bot dies meanwhile
    ix, job_id = await train(emulator, cid)
    await emulator.wait_for(lambda: requests(fake, "PUT", "/upload/") == 3)
    await easel.bot.jobs.scheduler.stop(grace=0)  # a crash: the submit is cut mid-upload
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    assert job.status is JobStatus.SUBMITTING
    await easel.restart()
    await emulator.wait_for(lambda: len(fake.models) == 1, timeout=10)
    (model,) = fake.models.values()
    await fake.complete_model(model.id)
    await ready(emulator, ix, job_id)
    # The two recorded uploads are reused; only the hung one is sent again. The create went out once.
    assert requests(fake, "PUT", "/upload/") == 4
    assert requests(fake, "POST", "/api/model") == 1
    assert len(model.image_ids) == 3


async def test_models_beyond_the_concurrency_limit_wait_in_the_queue(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    # mimpi allows 30 concurrent models; the same rule with a limit of 2 keeps this test fast.
    fake.auto_advance = False
    fake.max_concurrent_models = 2
    easel = await start(easel_factory, fake, max_models=2)
    members = [emulator.add_member(name) for name in ("dee", "eli", "fay")]
    started = []
    for member in members:
        await make_set(emulator, member, 3)
        started.append(await train(emulator, member))
    await emulator.wait_for(lambda: len(fake.models) == 2)
    third_ix, third = started[2]
    assert "Queued" in (third_ix.original or {}).get("content", "")
    job = await easel.bot.jobs.store.get(third)
    assert job is not None
    assert job.status is JobStatus.QUEUED
    assert requests(fake, "POST", "/api/model") == 2, "the third create waits for a slot, no 429 needed"
    await fake.complete_model(next(iter(fake.models)))
    await emulator.wait_for(lambda: len(fake.models) == 3, timeout=10)
    for model_id in list(fake.models)[1:]:
        await fake.complete_model(model_id)
    for ix, job_id in started:
        await ready(emulator, ix, job_id)


async def test_a_429_from_the_account_limit_requeues_the_create_without_uploading_again(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    # Another app on the same mimpi account holds its only model slot: mimpi answers 429 to our create.
    fake.auto_advance = False
    fake.max_concurrent_models = 1
    async with httpx.AsyncClient(timeout=5) as http:
        other_app = MimpiAdapter(http, api_key=LIVE, base_url=fake.base_url)
        image_id = await other_app.upload(images.jpeg(64, 64, label="other app"))
        created = await http.post(
            f"{fake.base_url}/model",
            json={"subject": "man", "imageIds": [image_id]},
            headers={"Authorization": f"Bearer {LIVE}"},
        )
        blocker = created.json()["data"]["id"]
    easel = await start(easel_factory, fake)
    ola = emulator.add_member("ola")
    await make_set(emulator, ola, 3)
    ix, job_id = await train(emulator, ola)
    # Three refusals (the in-call retries of one submit), then the engine requeues the job and tries again.
    await emulator.wait_for(lambda: requests(fake, "POST", "/api/model") >= 1 + 3 + 1, timeout=10)
    await fake.complete_model(blocker)
    await emulator.wait_for(lambda: len(fake.models) == 2, timeout=10)
    ours = next(m for m in fake.models.values() if m.id != blocker)
    await fake.complete_model(ours.id)
    await ready(emulator, ix, job_id)
    assert requests(fake, "PUT", "/upload/") == 1 + 3, "the retried create reuses the uploaded photos"
    job = await easel.bot.jobs.store.get(job_id)
    assert job is not None
    assert job.attempts >= 2


async def test_models_are_private_to_their_owner_and_admins_manage_them(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    await start(easel_factory, fake, key=TEST)
    gus, hal = emulator.add_member("gus"), emulator.add_member("hal")
    admin = emulator.add_member("ida", admin=True)
    await make_set(emulator, gus, 3)
    ix, model = await train(emulator, gus)
    await ready(emulator, ix, model)
    gen = await emulator.invoke("portrait generate", {"model": model, "prompt": "sks man smiling"}, user=gus)
    picture_job = job_id_in((await answer(gen))["content"])
    picture = await ready(emulator, gen, picture_job)

    # Another member: cannot generate with it, see it, list it or delete it.
    for command, options in (
        ("portrait generate", {"model": model, "prompt": "hello"}),
        ("portrait info", {"model": model}),
        ("portrait delete", {"model": model}),
    ):
        refused = await run(emulator, command, hal, **options)
        assert "No such model of yours" in refused["content"], command
    assert await emulator.autocomplete("portrait generate", {"model": ""}, focused="model", user=hal) == []
    assert "no portrait models" in (await run(emulator, "portrait models", hal))["content"]
    assert "Only server admins" in (await run(emulator, "portrait models", hal, everyone=True))["content"]
    stolen = await emulator.press_button(picture, f"ej:pmore:{picture_job}", user=hal)
    assert "Only the member who trained" in (await answer(stolen))["content"]
    assert len(fake.prompts) == 1

    # The owner sees it; an admin lists everyone's and deletes it; then it is gone for the owner too.
    assert "gus" not in (await run(emulator, "portrait info", gus, model=model))["embeds"][0]["title"]
    everyone = await run(emulator, "portrait models", admin, everyone=True)
    assert f"`{model}`" in everyone["embeds"][0]["description"]
    assert f"<@{gus.id}>" in everyone["embeds"][0]["description"]
    admin_choices = await emulator.autocomplete("portrait delete", {"model": ""}, focused="model", user=admin)
    assert [c["value"] for c in admin_choices] == [model]
    deleted = await run(emulator, "portrait delete", admin, model=model)
    assert "Deleted the portrait model" in deleted["content"]
    gone = await run(emulator, "portrait generate", gus, model=model, prompt="again")
    assert "No such model of yours" in gone["content"]
    assert "no portrait models" in (await run(emulator, "portrait models", gus))["content"]
    assert len(fake.prompts) == 1


async def test_test_key_results_are_marked_as_sample_data(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    await start(easel_factory, fake, key=TEST)
    ivy = emulator.add_member("ivy")
    await make_set(emulator, ivy, 3, subject="dog")
    ix, model = await train(emulator, ivy)
    trained = await ready(emulator, ix, model)
    assert "test key" in trained["content"]
    info = await run(emulator, "portrait info", ivy, model=model)
    assert any("test key" in f["value"] for f in info["embeds"][0]["fields"])
    gen = await emulator.invoke("portrait generate", {"model": model, "prompt": "on a beach", "count": 1}, user=ivy)
    picture = await ready(emulator, gen, job_id_in((await answer(gen))["content"]))
    assert "sample images" in picture["content"]
    assert fake.billed_models == 0


async def test_failed_training_and_no_payment_card_are_explained_and_refunded(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    fake.auto_advance = False
    easel = await start(easel_factory, fake)
    jan = emulator.add_member("jan")
    await make_set(emulator, jan, 3)
    ix, job_id = await train(emulator, jan)
    model_id = await emulator.wait_for(lambda: next(iter(fake.models), None))
    await fake.fail_model(model_id, "no face could be detected")
    notice = await ix.wait_followup(lambda m: job_id in m["content"], timeout=10)
    assert "no face could be detected" in notice["content"]
    assert "50 credits went back" in notice["content"]
    listing = await run(emulator, "portrait models", jan)
    assert "failed" in listing["embeds"][0]["description"]

    await easel.restart(mimpi_api_key=NO_CARD)
    kim = emulator.add_member("kim")
    await make_set(emulator, kim, 3)
    ix, job_id = await train(emulator, kim)
    notice = await ix.wait_followup(lambda m: job_id in m["content"], timeout=10)
    assert "server admin" in notice["content"]
    assert "went back to you" in notice["content"]
    assert len(fake.models) == 1


async def test_each_validation_rule_has_its_own_message(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    await start(easel_factory, fake)
    lea = emulator.add_member("lea")

    no_set = await add(emulator, lea, photo("lea", 0))
    assert "no training set open" in no_set["content"]
    bad_subject = await run(emulator, "portrait new", lea, subject="12345")
    assert "plain letters" in bad_subject["content"]
    await run(emulator, "portrait new", lea, subject="person")
    again = await run(emulator, "portrait new", lea, subject="person")
    assert "already have a training set open" in again["content"]

    text = Attachment(b"just some notes", "notes.txt", "text/plain")
    huge = Attachment(b"\x89PNG" + bytes(21 * 1024 * 1024), "huge.png", "image/png")
    tiny = photo("lea", 99, size=100)
    refused = await add(emulator, lea, text, huge, tiny)
    assert "No photos were added" in refused["content"]
    assert "`notes.txt` is not an image" in refused["content"]
    assert "`huge.png` is 21.0 MB; the limit is 20.0 MB" in refused["content"]
    assert "at least 256 px" in refused["content"]

    await add(emulator, lea, photo("lea", 0), photo("lea", 1))
    too_few = await run(emulator, "portrait train", lea)
    assert f"needs at least {MIN}" in too_few["content"]
    review = await run(emulator, "portrait review", lea)
    train_button = next(c for row in review["components"] for c in row["components"] if "pt:train" in c["custom_id"])
    assert train_button["disabled"] is True

    mixed = await add(emulator, lea, photo("lea", 1), *(photo("lea", n) for n in range(2, 7)))
    assert "Added 4 photos: now 6" in mixed["content"]
    assert "Already in your set: `lea1.png`" in mixed["content"]
    assert "the set is full (6 photos): `lea6.png`" in mixed["content"]
    full = await add(emulator, lea, photo("lea", 7))
    assert "already has 6 photos, the most allowed" in full["content"]

    out_of_range = await run(emulator, "portrait remove", lea, numbers="2, 9")
    assert "photos 1 to 6" in out_of_range["content"]
    no_images = emulator.user_message("no pictures here", user=lea)
    ix = await emulator.invoke_message_command("Add to my training set", no_images, user=lea)
    assert "no attached photos" in (await answer(ix))["content"]
    unknown = await run(emulator, "portrait generate", lea, model="nosuchid", prompt="hi")
    assert "No such model of yours: `nosuchid`" in unknown["content"]

    discarded = await run(emulator, "portrait discard", lea)
    assert "Discarded" in discarded["content"]
    assert "no training set open" in (await run(emulator, "portrait review", lea))["content"]


async def test_discarding_or_erasing_forgets_the_photos(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    easel = await start(easel_factory, fake)
    # The extension loader imports the cog module afresh, so its class is not cogs.portraits.Portraits.
    repo: PortraitRepository = easel.bot.get_cog("Portraits").repo  # type: ignore[union-attr]
    files = easel.bot.jobs.files

    async def stored(member: Member) -> list[Path]:
        training_set = await repo.open_set(emulator.guild_id, member.id)
        assert training_set is not None
        paths = [files.input_path(p.sha256) for p in await repo.photos(training_set.id)]
        assert paths
        assert all(p.exists() for p in paths)
        return paths

    mo, ned = emulator.add_member("mo"), emulator.add_member("ned")
    await make_set(emulator, mo, 2)
    await make_set(emulator, ned, 2)
    mos, neds = await stored(mo), await stored(ned)
    assert "Discarded" in (await run(emulator, "portrait discard", mo))["content"]
    assert not any(p.exists() for p in mos)
    assert await repo.erase_member(emulator.guild_id, ned.id) == 1
    assert not any(p.exists() for p in neds)
    assert "no training set open" in (await run(emulator, "portrait review", ned))["content"]


async def _status(easel: Easel, job_id: str, status: JobStatus, *, delivered: bool = False) -> bool:
    job = await easel.bot.jobs.store.get(job_id)
    if job is None or job.status is not status:
        return False
    return job.delivery is Delivery.DELIVERED if delivered else True


async def test_photos_an_open_set_still_needs_survive_a_finished_training_and_forget_me_erases_sets(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    easel = await start(easel_factory, fake)
    repo: PortraitRepository = easel.bot.get_cog("Portraits").repo  # type: ignore[union-attr]
    ann, bob = emulator.add_member("ann"), emulator.add_member("bob")
    await make_set(emulator, ann, 3)
    await run(emulator, "portrait new", bob, subject="man")
    await add(emulator, bob, *(photo("ann", n) for n in range(3)))  # the very same pictures
    bob_set = await repo.open_set(emulator.guild_id, bob.id)
    assert bob_set is not None
    bob_paths = [easel.bot.jobs.files.input_path(p.sha256) for p in await repo.photos(bob_set.id)]
    ix, job_id = await train(emulator, ann)
    await ready(emulator, ix, job_id)
    await eventually(lambda: _status(easel, job_id, JobStatus.SUCCEEDED, delivered=True))
    assert all(p.exists() for p in bob_paths), "ann's finished job must not delete photos bob's open set uses"

    ask = await emulator.invoke("forget-me", user=bob)
    question = await answer(ask)
    press = await emulator.press_button(question, f"eq:forget:{bob.id}", user=bob)
    await press.response()

    async def erased() -> bool:
        return await repo.open_set(emulator.guild_id, bob.id) is None

    await eventually(erased)
    assert not any(p.exists() for p in bob_paths)


async def test_only_own_messages_feed_a_set_and_the_menu_adds_to_the_set_worked_on_last(
    emulator: DiscordEmulator, easel_factory: EaselFactory, fake: FakeMimpi
) -> None:
    async with FakeFlair(api_key="fl_live_123") as flair:
        easel = await start(easel_factory, fake, flair_api_key="fl_live_123", flair_base_url=flair.base_url)
        lea, ben = emulator.add_member("lea"), emulator.add_member("ben")
        await run(emulator, "portrait new", lea, subject="woman", name="Lea")
        repo: PortraitRepository = easel.bot.get_cog("Portraits").repo  # type: ignore[union-attr]
        lea_set = await repo.open_set(emulator.guild_id, lea.id)
        assert lea_set is not None

        # Ben's selfies cannot become Lea's portrait model.
        bens = emulator.user_message("me", user=ben, attachments=[photo("ben", 0)])
        ix = await emulator.invoke_message_command("Add to my training set", bens, user=lea)
        assert "Only your own messages" in (await answer(ix))["content"]
        assert ix.ephemeral
        assert await repo.photos(lea_set.id) == []

        own = emulator.user_message("me", user=lea, attachments=[photo("lea", 0)])
        ix = await emulator.invoke_message_command("Add to my training set", own, user=lea)
        assert "now 1 in **Lea**" in (await answer(ix))["content"]

        # One message command for both studios: it adds to the set the member worked on last.
        await run(emulator, "style create", lea, name="Ink")
        more = emulator.user_message("art", user=lea, attachments=[photo("lea", 1)])
        ix = await emulator.invoke_message_command("Add to my training set", more, user=lea)
        assert "now 1 in **Ink**" in (await answer(ix))["content"]
        await run(emulator, "portrait review", lea)
        ix = await emulator.invoke_message_command("Add to my training set", more, user=lea)
        assert "now 2 in **Lea**" in (await answer(ix))["content"]
