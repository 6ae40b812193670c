"""The Mimi Panda adapter against the fake Mimi Panda server: requests, status mapping, errors, gotchas."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pydantic import ValidationError

from bot.http_client import build_http_client
from bot.providers.base import (
    AuthenticationFailed,
    ContentPolicy,
    ErrorKind,
    Failed,
    Finished,
    InputFile,
    InvalidInput,
    JobContext,
    NotFoundAtProvider,
    OutOfCredits,
    Pending,
    RateLimited,
    Submitted,
    Transient,
)
from bot.providers.mimipanda import MimiPandaAdapter
from bot.providers.mimipanda_models import (
    AiColoringRequest,
    AiImageRequest,
    ColoringRequest,
    FilterRequest,
    PbnRequest,
    UpscaleRequest,
)
from bot.providers.registry import build_adapters
from bot.settings import Settings
from tests.fakes import images
from tests.fakes.mimipanda import CONTENT_POLICY_ERROR, NAMED_COLORS, QUOTA_ERROR, FakeMimiPanda

TOKEN = "mp-adapter-token"


@pytest.fixture
async def fake() -> AsyncIterator[FakeMimiPanda]:
    server = FakeMimiPanda(token=TOKEN)
    server.queue_seconds, server.processing_seconds = 0.01, 0.02
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client() as http:  # the client production uses
        yield http


def make_adapter(client: httpx.AsyncClient, fake: FakeMimiPanda, **kwargs: Any) -> MimiPandaAdapter:
    options: dict[str, Any] = {"first_poll_s": 0.0, "poll_s": None, **kwargs}
    return MimiPandaAdapter(client, base_url=fake.base_url, token=TOKEN, **options)


@pytest.fixture
def adapter(client: httpx.AsyncClient, fake: FakeMimiPanda) -> MimiPandaAdapter:
    return make_adapter(client, fake)


class Jobs:
    """Builds JobContexts the way the engine does (inputs stored as files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def __call__(
        self,
        feature: str,
        params: dict[str, Any],
        image: bytes | None = None,
        *,
        filename: str = "photo.png",
        mime: str = "image/png",
        ref: dict[str, Any] | None = None,
    ) -> JobContext:
        self.count += 1
        inputs = []
        if image is not None:
            path = self.root / f"input-{self.count}"
            path.write_bytes(image)
            inputs.append(InputFile("image", path, filename, mime, len(image)))
        return JobContext(f"job{self.count}", feature, params, ref or {}, inputs, None, 1)


@pytest.fixture
def jobs(tmp_path: Path) -> Jobs:
    return Jobs(tmp_path)


def with_ref(job: JobContext, submitted: Submitted) -> JobContext:
    return JobContext(job.id, job.feature, job.params, submitted.ref, job.inputs, None, job.attempts)


async def run(adapter: MimiPandaAdapter, job: JobContext) -> Finished | Failed:
    submitted = await adapter.submit(job)
    job = with_ref(job, submitted)
    for _ in range(500):
        outcome = await adapter.check(job)
        if not isinstance(outcome, Pending):
            return outcome
        await asyncio.sleep(0.01)
    raise AssertionError("the job never finished")


# --- requests exactly as documented --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "params", "kind", "form"),
    [
        ("coloring", {}, "coloring", {"version": "v2", "type": "v2_general"}),
        ("coloring", {"type": "for_kids"}, "coloring", {"version": "v1", "type": "for_kids"}),
        ("coloring", {"version": "v1"}, "coloring", {"version": "v1", "type": "for_adults"}),
        ("upscale", {"upscale": 4}, "image/upscale", {"upscale": "4"}),
        (
            "filter",
            {"filter_type": "artistic", "strength": 0.7},
            "image/filter",
            {"filterType": "artistic", "strength": "0.7"},
        ),
        (
            "pbn",
            {},
            "pbn",
            {
                "numberOfColors": "30",
                "segmentsComplexity": "none",
                "gradientStep": "high",
                "colorPrecision": "high",
                "crop": "0",
                "mixPalette": "0",
                "aiFilterType": "none",
                "minArea": "0",
            },
        ),
        (
            "pbn",
            {
                "number_of_colors": 40,
                "segments_complexity": "level2",
                "gradient_step": "normal",
                "color_precision": "low",
                "canvas_size": "12x16",
                "crop": True,
                "details_filter": "ultra",
                "palette": 1,
                "palette_colors": "#FF0000, #00FF00,#0000FF,#FFFFFF,#000000,#808080,#C0C0C0",
                "mix_palette": True,
                "ai_filter_type": "painting-watercolor",
                "min_area": 5,
            },
            "pbn",
            {
                "numberOfColors": "40",
                "segmentsComplexity": "level2",
                "gradientStep": "normal",
                "colorPrecision": "low",
                "canvasSize": "12x16",
                "crop": "1",
                "detailsFilter": "ultra",
                "palette": "1",
                "paletteColors": "#FF0000,#00FF00,#0000FF,#FFFFFF,#000000,#808080,#C0C0C0",
                "mixPalette": "1",
                "aiFilterType": "painting-watercolor",
                "minArea": "5",
            },
        ),
    ],
)
async def test_image_creates_are_multipart_with_the_documented_fields(
    adapter: MimiPandaAdapter,
    fake: FakeMimiPanda,
    jobs: Jobs,
    feature: str,
    params: dict[str, Any],
    kind: str,
    form: dict[str, str],
) -> None:
    fake.palettes[1] = ["#FF0000", "#00FF00", "#0000FF", "#FFFFFF", "#000000", "#808080", "#C0C0C0"]
    photo = images.jpeg(120, 90, label="in")
    outcome = await run(adapter, jobs(feature, params, photo, filename="in.jpg", mime="image/jpeg"))
    assert isinstance(outcome, Finished)
    (create,) = fake.creates(kind)
    assert create.headers["Authorization"] == f"Bearer {TOKEN}"
    assert create.headers["Content-Type"].startswith("multipart/form-data")
    assert create.form == form
    assert create.files == {"image": ("in.jpg", "image/jpeg", photo)}
    assert create.json is None


@pytest.mark.parametrize(
    ("feature", "params", "kind", "body"),
    [
        (
            "ai_coloring",
            {"prompt": " A unicorn ", "style": "teenagers_coloring_page", "version": "v1"},
            "ai/coloring",
            {"prompt": "A unicorn", "style": "teenagers_coloring_page", "version": "v1"},
        ),
        (
            "ai_coloring",
            {"prompt": "A unicorn", "style": "kids_coloring_page", "aspect_ratio": "9x16", "version": "v2"},
            "ai/coloring",
            {"prompt": "A unicorn", "style": "kids_coloring_page", "aspectRatio": "9x16", "version": "v2"},
        ),
        (
            "ai_image",
            {"prompt": "A red fox", "aspect_ratio": "4x5"},
            "ai/image",
            {"prompt": "A red fox", "aspectRatio": "4x5"},
        ),
    ],
)
async def test_prompt_creates_are_json(
    adapter: MimiPandaAdapter,
    fake: FakeMimiPanda,
    jobs: Jobs,
    feature: str,
    params: dict[str, Any],
    kind: str,
    body: dict[str, Any],
) -> None:
    outcome = await run(adapter, jobs(feature, params))
    assert isinstance(outcome, Finished)
    (create,) = fake.creates(kind)
    assert create.headers["Content-Type"].startswith("application/json")
    assert create.json == body
    assert len(outcome.files) == 2  # the fake answers two images, like the doc's example
    assert [f.url for f in outcome.files] == [
        f"{fake.origin}/storage/{create.job_key}/image-{n}.{'png' if kind == 'ai/coloring' else 'jpg'}" for n in (1, 2)
    ]


async def test_pbn_from_a_prompt_is_multipart_without_a_file(
    adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs
) -> None:
    outcome = await run(adapter, jobs("pbn", {"prompt": "Sunset over hills", "number_of_colors": 8}))
    assert isinstance(outcome, Finished)
    (create,) = fake.creates("pbn")
    assert create.headers["Content-Type"].startswith("multipart/form-data")
    assert create.form["prompt"] == "Sunset over hills"
    assert create.form["numberOfColors"] == "8"
    assert create.files == {}


# --- status mapping ------------------------------------------------------------------------------------


async def test_status_mapping_and_poll_rhythm(client: httpx.AsyncClient, fake: FakeMimiPanda, jobs: Jobs) -> None:
    now = [1000.0]
    adapter = MimiPandaAdapter(client, base_url=fake.base_url, token=TOKEN, clock=lambda: now[0])
    fake.auto_advance = False
    job = jobs("coloring", {}, images.png(64, 64))
    submitted = await adapter.submit(job)
    assert submitted.next_check == 4.0, "the first poll waits a few seconds"
    job = with_ref(job, submitted)
    key = submitted.ref["key"]
    assert key in fake.jobs

    queued = await adapter.check(job)
    assert isinstance(queued, Pending)
    assert queued.running is False
    assert queued.next_check == pytest.approx(3.0)
    fake.advance(key)
    now[0] += 30
    running = await adapter.check(job)
    assert isinstance(running, Pending)
    assert running.running is True
    assert 3.0 < (running.next_check or 0) <= 5.0, "3-5 s while most jobs finish"
    now[0] += 270  # a job running for five minutes is polled less often, but not too rarely
    late = await adapter.check(job)
    assert isinstance(late, Pending)
    assert 5.0 < (late.next_check or 0) <= 30.0
    fake.finish(key)
    done = await adapter.check(job)
    assert isinstance(done, Finished)
    assert [(f.url, f.kind, f.send) for f in done.files] == [
        (f"{fake.origin}/storage/{key}/coloring.png", "image", True)
    ]
    assert done.files[0].filename == "coloring-page.png"


async def test_failed_job_maps_to_failed(adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs) -> None:
    fake.auto_advance = False
    job = jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"})
    job = with_ref(job, await adapter.submit(job))
    fake.fail(job.ref["key"], "Generation failed: GPU on fire")
    outcome = await adapter.check(job)
    assert outcome == Failed(ErrorKind.FAILED, "Generation failed: GPU on fire")
    # A failure the service blames on its content policy is reported as such.
    job2 = jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"})
    job2 = with_ref(job2, await adapter.submit(job2))
    fake.fail(job2.ref["key"], CONTENT_POLICY_ERROR)
    assert await adapter.check(job2) == Failed(ErrorKind.CONTENT_POLICY, CONTENT_POLICY_ERROR)


async def test_unknown_status_keeps_waiting(adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs) -> None:
    job = jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"})
    job = with_ref(job, await adapter.submit(job))
    fake.fail_next(200, body={"key": job.ref["key"], "status": "rendering"}, route="item")
    outcome = await adapter.check(job)
    assert isinstance(outcome, Pending)


# --- paint-by-numbers results --------------------------------------------------------------------------


async def test_pbn_result_has_template_picture_legend_and_kept_files(
    adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs
) -> None:
    outcome = await run(adapter, jobs("pbn", {"number_of_colors": 12}, images.png(100, 80)))
    assert isinstance(outcome, Finished)
    key = fake.creates("pbn")[0].job_key
    by_label = {f.label: f for f in outcome.files}
    assert list(by_label) == ["template", "picture", "legend", "svg", "pdf", "csv", "gpl", "kpl", "swatches"]
    assert by_label["template"].url == f"{fake.origin}/storage/{key}/pbn.png"
    assert by_label["picture"].url == f"{fake.origin}/storage/{key}/picture.jpg"
    assert all(f.send for f in outcome.files[:3])
    kept = outcome.files[3:]
    assert all(f.kind == "file" and not f.send and f.data for f in kept)
    assert [f.filename for f in kept] == [
        "pbn.svg",
        "pbn.pdf",
        "palette.csv",
        "palette.gpl",
        "palette.kpl",
        "palette.swatches",
    ]
    assert key is not None
    job = fake.jobs[key]
    assert by_label["svg"].data == job.downloads["svg"]
    assert by_label["pdf"].data is not None
    assert by_label["pdf"].data.startswith(b"%PDF")
    assert by_label["csv"].data is not None
    csv = by_label["csv"].data.decode()
    assert csv.splitlines()[1].startswith(f'1,"{NAMED_COLORS[0][0]}",{NAMED_COLORS[0][1]}')
    assert by_label["kpl"].data is not None
    assert zipfile.ZipFile(io.BytesIO(by_label["kpl"].data)).read("mimetype") == b"krita/x-colorset"
    # The legend, as an image and as text: every colour with its number, name and hex.
    assert by_label["legend"].data is not None
    legend = Image.open(io.BytesIO(by_label["legend"].data))
    assert legend.format == "PNG"
    first_hex = NAMED_COLORS[0][1]
    rgb = tuple(int(first_hex[i : i + 2], 16) for i in (1, 3, 5))
    assert rgb in {colour for _, colour in legend.convert("RGB").getcolors(1 << 20) or []}, "swatches are painted"
    assert outcome.text is not None
    assert outcome.text.startswith("**Palette** (12 colours)")
    for number, (name, hex_code) in enumerate(NAMED_COLORS[:12], 1):
        assert f"`{number:>2}` {name} · {hex_code}" in outcome.text
    assert outcome.meta == {"colors": 12}
    extras = [r.path for r in fake.requests if r.route == "extra"]
    assert extras == [f"item/{key}/pbn/download/{t}" for t in ("svg", "pdf")] + [
        f"item/{key}/pbn/colors/{t}" for t in ("csv", "gpl", "kpl", "swatches")
    ]


async def test_pbn_with_many_colours_shortens_the_text_and_attaches_the_legend(
    adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs
) -> None:
    outcome = await run(adapter, jobs("pbn", {"prompt": "a busy market", "number_of_colors": 100}))
    assert isinstance(outcome, Finished)
    assert outcome.text is not None
    assert len(outcome.text) <= 1600
    assert "more: see the legend image" in outcome.text
    by_label = {f.label: f for f in outcome.files}
    full = by_label["legend-text"]
    assert full.send
    assert full.data is not None
    assert len(full.data.decode().splitlines()) == 100
    # Palettes over 30 colours come as zips of smaller files.
    assert by_label["csv"].filename == "palette-csv.zip"
    assert by_label["csv"].data is not None
    assert len(zipfile.ZipFile(io.BytesIO(by_label["csv"].data)).namelist()) == 4
    legend = Image.open(io.BytesIO(by_label["legend"].data or b""))
    assert legend.width > legend.height, "100 colours are laid out in columns"


async def test_pbn_extra_files_retry_later_on_transient_errors(
    adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs
) -> None:
    fake.auto_advance = False
    job = jobs("pbn", {"prompt": "a lighthouse", "number_of_colors": 7})
    job = with_ref(job, await adapter.submit(job))
    fake.finish(job.ref["key"])
    fake.fail_next(503, count=3, route="extra")  # more than the in-call retries
    with pytest.raises(Transient):
        await adapter.check(job)
    outcome = await adapter.check(job)  # the engine's next check fetches them all
    assert isinstance(outcome, Finished)
    assert len([f for f in outcome.files if f.kind == "file"]) == 6


# --- errors --------------------------------------------------------------------------------------------


async def test_validation_error_is_invalid_input(adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs) -> None:
    fake.filter_types = {"artistic"}
    with pytest.raises(InvalidInput) as caught:
        await adapter.submit(jobs("filter", {"filter_type": "neon", "strength": 0.5}, images.png()))
    assert caught.value.message == "The selected filter type is invalid."
    assert caught.value.status == 400


async def test_content_policy(adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs) -> None:
    with pytest.raises(ContentPolicy) as caught:
        await adapter.submit(jobs("ai_image", {"prompt": "Mickey at the beach", "aspect_ratio": "1x1"}))
    assert caught.value.message == CONTENT_POLICY_ERROR
    assert not fake.jobs


async def test_bad_token_is_authentication_failed(client: httpx.AsyncClient, fake: FakeMimiPanda, jobs: Jobs) -> None:
    adapter = MimiPandaAdapter(client, base_url=fake.base_url, token="wrong")
    with pytest.raises(AuthenticationFailed):
        await adapter.submit(jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"}))


async def test_403_quota_is_out_of_credits_other_403_is_authentication(
    adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs
) -> None:
    fake.quota_remaining = 0
    with pytest.raises(OutOfCredits) as caught:
        await adapter.submit(jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"}))
    assert caught.value.message == QUOTA_ERROR
    fake.quota_remaining = None
    fake.fail_next(403, body={"error": "This action is unauthorized."})
    with pytest.raises(AuthenticationFailed):
        await adapter.submit(jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"}))
    assert not fake.jobs


async def test_429_on_create_honours_retry_after(adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs) -> None:
    # A short Retry-After is waited out in the call (a 429 never created anything).
    fake.fail_next(429, retry_after=0.01, route="create")
    submitted = await adapter.submit(jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"}))
    assert submitted.ref["key"] in fake.jobs
    assert [r.status for r in fake.creates()] == [429, 200]
    # A long one goes back to the engine, which reschedules the job.
    fake.fail_next(429, retry_after=30, route="create")
    with pytest.raises(RateLimited) as caught:
        await adapter.submit(jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"}))
    assert caught.value.retry_after == 30


async def test_500_on_create_is_never_retried(adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs) -> None:
    fake.fail_next(500, route="create")
    with pytest.raises(Transient) as caught:
        await adapter.submit(jobs("coloring", {}, images.png()))
    assert caught.value.reached
    assert len(fake.creates()) == 1


async def test_500_on_a_status_check_is_retried(adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs) -> None:
    job = jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"})
    job = with_ref(job, await adapter.submit(job))
    fake.fail_next(500, route="item")
    assert not isinstance(await adapter.check(job), Failed), "a status GET is safe to retry in the call"
    assert [r.status for r in fake.polls()][:2] == [500, 200]


async def test_slow_create_times_out_and_is_not_resent(
    client: httpx.AsyncClient, fake: FakeMimiPanda, jobs: Jobs
) -> None:
    adapter = make_adapter(client, fake, create_timeout_s=0.2, get_timeout_s=0.2)
    fake.slow_next(1.0, route="create")
    with pytest.raises(Transient) as caught:
        await adapter.submit(jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"}))
    assert caught.value.reached, "it may have been created: the engine must not send it again"
    assert len(fake.creates()) == 1
    assert len(fake.jobs) == 1


async def test_slow_status_answer_is_transient(client: httpx.AsyncClient, fake: FakeMimiPanda, jobs: Jobs) -> None:
    adapter = make_adapter(client, fake, get_timeout_s=0.2)
    job = jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"})
    job = with_ref(job, await adapter.submit(job))
    fake.slow_next(1.0, count=3, route="item")
    with pytest.raises(Transient):
        await adapter.check(job)


# --- the early-poll gotchas ----------------------------------------------------------------------------


async def test_early_404_and_html_are_pending_during_the_grace_period(
    adapter: MimiPandaAdapter, fake: FakeMimiPanda, jobs: Jobs
) -> None:
    fake.early_404_polls, fake.html_polls = 2, 2
    job = jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"})
    job = with_ref(job, await adapter.submit(job))
    early = [await adapter.check(job) for _ in range(4)]
    assert all(isinstance(o, Pending) and not o.running for o in early)
    assert [r.fault for r in fake.polls()] == ["early_404", "early_404", "html", "html"]
    outcome = await run_checks(adapter, job)
    assert isinstance(outcome, Finished)


async def run_checks(adapter: MimiPandaAdapter, job: JobContext) -> Finished | Failed:
    for _ in range(500):
        outcome = await adapter.check(job)
        if not isinstance(outcome, Pending):
            return outcome
        await asyncio.sleep(0.01)
    raise AssertionError("never finished")


async def test_after_the_grace_period_404_and_html_are_errors(
    client: httpx.AsyncClient, fake: FakeMimiPanda, jobs: Jobs
) -> None:
    adapter = make_adapter(client, fake, early_grace_s=0.0)
    fake.early_404_polls, fake.html_polls = 1, 1
    job = jobs("ai_image", {"prompt": "a fox", "aspect_ratio": "1x1"})
    job = with_ref(job, await adapter.submit(job))
    with pytest.raises(NotFoundAtProvider):
        await adapter.check(job)
    with pytest.raises(Transient):
        await adapter.check(job)  # HTML
    fake.malformed_next(route="item")
    with pytest.raises(Transient):
        await adapter.check(job)  # truncated JSON


# --- settings, deadlines, models -----------------------------------------------------------------------


def test_built_from_settings(client: httpx.AsyncClient, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        database_path=tmp_path / "easel.db",
        mimipanda_api_token="secret-token",
        mimipanda_base_url="https://panda.example/api/service",
    )
    adapters = build_adapters(settings, client)
    adapter = adapters["mimipanda"]
    assert isinstance(adapter, MimiPandaAdapter)
    assert adapter.base_url == "https://panda.example/api/service"
    assert adapter.http.url("item/k") == "https://panda.example/api/service/item/k"
    default = Settings(_env_file=None, database_path=tmp_path / "easel.db", mimipanda_api_token="t")
    assert build_adapters(default, client)["mimipanda"].base_url == "https://mimi-panda.com/api/service"
    assert adapter.deadline("pbn") == 20 * 60
    assert adapter.deadline("ai_image") == 10 * 60


@pytest.mark.parametrize(
    ("model", "values", "problem"),
    [
        (ColoringRequest, {"version": "v2", "type": "for_kids"}, "for_kids is a v1 type"),
        (ColoringRequest, {"version": "v3"}, "version"),
        (AiColoringRequest, {"prompt": "ab", "style": "kids_coloring_page", "version": "v2"}, "at least 3"),
        (AiColoringRequest, {"prompt": "a cat", "style": "fantasy", "version": "v2"}, "style"),
        (AiColoringRequest, {"prompt": "a cat", "style": "kids_coloring_page"}, "version"),
        (AiImageRequest, {"prompt": "x" * 601, "aspect_ratio": "1x1"}, "at most 600"),
        (AiImageRequest, {"prompt": "a cat", "aspect_ratio": "16x9"}, "aspect_ratio"),
        (PbnRequest, {}, "exactly one of an image and a prompt"),
        (PbnRequest, {"from_image": True, "prompt": "a cat"}, "exactly one"),
        (PbnRequest, {"from_image": True, "number_of_colors": 6}, "greater than or equal to 7"),
        (PbnRequest, {"from_image": True, "number_of_colors": 101}, "less than or equal to 100"),
        (PbnRequest, {"from_image": True, "canvas_size": "3x10"}, "4 to 45 inches"),
        (PbnRequest, {"from_image": True, "canvas_size": "12 by 16"}, "width x height"),
        (PbnRequest, {"from_image": True, "palette": 1, "palette_colors": "a,b,c"}, "at least 7"),
        (PbnRequest, {"from_image": True, "palette_colors": "a,b,c,d,e,f,g"}, "set the palette id"),
        (PbnRequest, {"from_image": True, "ai_filter_type": "painting-cubism"}, "ai_filter_type"),
        (PbnRequest, {"from_image": True, "min_area": 101}, "min_area"),
        (PbnRequest, {"from_image": True, "segments_complexity": "level4"}, "segments_complexity"),
        (UpscaleRequest, {"upscale": 3}, "upscale"),
        (FilterRequest, {"filter_type": "art deco", "strength": 0.5}, "one word"),
        (FilterRequest, {"filter_type": "artistic", "strength": 0.25}, "steps of 0.1"),
        (FilterRequest, {"filter_type": "artistic", "strength": 1.1}, "steps of 0.1"),
    ],
)
def test_request_models_refuse_what_the_api_would(model: Any, values: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(values)
    assert problem in str(caught.value)


def test_request_models_accept_the_boundaries() -> None:
    PbnRequest(from_image=True, number_of_colors=7, canvas_size="4x4", min_area=0)
    PbnRequest(prompt="abc", number_of_colors=100, canvas_size="45x45", min_area=100)
    AiImageRequest(prompt="x" * 600, aspect_ratio="5x4")
    assert FilterRequest(filter_type="artistic", strength=0.2).strength == 0.2
    assert FilterRequest(filter_type="artistic", strength="1.0").strength == 1.0
