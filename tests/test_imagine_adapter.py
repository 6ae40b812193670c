"""The Imagine adapter through the real ProviderHTTP and the production HTTP client, against the fake Imagine
server: endpoints, multipart fields and files, results, every error code, lost answers, videos."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.downloads import fetch
from bot.http_client import build_http_client
from bot.media.fit import has_transparency
from bot.media.video import probe
from bot.providers.base import (
    AuthenticationFailed,
    ErrorKind,
    Failed,
    Finished,
    InputFile,
    InvalidInput,
    JobContext,
    OutOfCredits,
    Pending,
    RateLimited,
    Submitted,
    Transient,
)
from bot.providers.imagine import IMAGE_ASPECTS, IMAGE_STYLES, VIDEO_ASPECTS, ImagineAdapter
from bot.providers.registry import build_adapters
from bot.settings import Settings
from tests.fakes import images
from tests.fakes.imagine import FakeImagine

KEY = "vk-adapter-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeImagine]:
    server = FakeImagine(api_key=KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client() as http:  # the client production uses
        yield http


def make_adapter(client: httpx.AsyncClient, fake: FakeImagine, key: str = KEY, **kwargs: Any) -> ImagineAdapter:
    return ImagineAdapter(client, base_url=fake.base_url, api_key=key, **kwargs)


@pytest.fixture
def adapter(client: httpx.AsyncClient, fake: FakeImagine) -> ImagineAdapter:
    return make_adapter(client, fake)


class Jobs:
    """JobContexts as the engine builds them (inputs stored as files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def __call__(self, feature: str, params: dict[str, Any], **inputs: bytes) -> JobContext:
        self.count += 1
        files = []
        for name, data in inputs.items():
            path = self.root / f"input-{self.count}-{name}"
            path.write_bytes(data)
            files.append(InputFile(name, path, f"{name}.png", "image/png", len(data)))
        return JobContext(f"job{self.count}", feature, params, {}, files, None, 1)


@pytest.fixture
def jobs(tmp_path: Path) -> Jobs:
    return Jobs(tmp_path)


def with_ref(job: JobContext, submitted: Submitted) -> JobContext:
    return JobContext(job.id, job.feature, job.params, submitted.ref, job.inputs, None, job.attempts)


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def cutout(width: int = 64, height: int = 48) -> bytes:
    """A transparent PNG with an opaque square in the middle."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    image.paste((200, 30, 30, 255), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def mask(width: int = 64, height: int = 48) -> bytes:
    """White (fill) on the left half, black elsewhere."""
    image = Image.new("L", (width, height), 0)
    image.paste(255, (0, 0, width // 2, height))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def finished(adapter: ImagineAdapter, job: JobContext) -> Finished:
    outcome = await adapter.submit(job)
    assert isinstance(outcome, Finished), outcome
    assert len(outcome.files) == 1
    assert outcome.files[0].data is not None
    return outcome


# --- every operation: endpoint, multipart fields and files, result ------------------------------------


async def test_generate_sends_every_field_as_multipart_and_returns_the_image(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    params = {"operation": "generate", "prompt": "  a red fox  ", "style": "anime", "aspect_ratio": "3:4", "seed": 7}
    outcome = await finished(adapter, jobs("imagine_image", params))
    (call,) = fake.calls()
    assert call.path == "image/generations"
    assert call.content_type == "multipart/form-data"
    assert call.fields == {"prompt": "a red fox", "style": "anime", "aspect_ratio": "3:4", "seed": "7"}
    assert call.files == {}
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    result = outcome.files[0]
    assert result.filename == "imagine.jpg"  # the fake answers JPEG: the extension follows the content
    assert result.data is not None
    assert opened(result.data).size == (192, 256)  # 3:4
    assert outcome.meta["style"] == "anime"
    assert outcome.meta["seed"] == 7


async def test_generate_sends_the_documented_defaults(adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs) -> None:
    fake.octet_stream = True  # some answers are application/octet-stream: judged by content anyway
    fake.generation_format = "PNG"
    outcome = await finished(adapter, jobs("imagine_image", {"prompt": "a lighthouse"}))
    assert fake.calls()[0].fields == {"prompt": "a lighthouse", "style": "imagine-turbo", "aspect_ratio": "1:1"}
    assert outcome.files[0].filename == "imagine.png"


async def test_an_answer_with_a_link_instead_of_bytes_is_taken_too(
    client: httpx.AsyncClient, adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    fake.image_answer = "link"
    outcome = await adapter.submit(jobs("imagine_image", {"prompt": "a kite", "aspect_ratio": "9:16"}))
    assert isinstance(outcome, Finished)
    (result,) = outcome.files
    assert result.url is not None
    assert result.data is None
    assert result.filename == "imagine.jpg"
    assert opened(await fetch(client, result.url, allow_private=True)).size == (144, 256)


async def test_transparent_returns_a_png_with_transparent_pixels(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    outcome = await finished(
        adapter, jobs("imagine_image", {"operation": "transparent", "prompt": "a teapot", "aspect_ratio": "16:9"})
    )
    (call,) = fake.calls()
    assert call.path == "image/generations/transparent"
    assert call.fields == {"prompt": "a teapot", "aspect_ratio": "16:9"}
    data = outcome.files[0].data
    assert data is not None
    assert outcome.files[0].filename == "transparent.png"
    assert opened(data).mode == "RGBA"
    assert has_transparency(data)


async def test_ai_background_uploads_the_transparent_picture(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    picture = cutout()
    params = {"operation": "background", "prompt": "on a marble table", "seed": 3}
    outcome = await finished(adapter, jobs("imagine_edit", params, image=picture))
    (call,) = fake.calls()
    assert call.path == "image/generations/ai-background"
    assert call.fields == {"prompt": "on a marble table", "style": "product-shoot", "seed": "3"}
    assert set(call.files) == {"image"}
    assert call.files["image"][2] == picture
    assert call.files["image"][1] == "image/png"
    data = outcome.files[0].data
    assert data is not None
    assert opened(data).size == (64, 48)
    assert not has_transparency(data)  # the background is filled in


async def test_generative_fill_sends_image_and_mask_and_only_masked_pixels_change(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    source = images.png(64, 48, label="scene")
    outcome = await finished(
        adapter, jobs("imagine_edit", {"operation": "fill", "prompt": "blue sky"}, image=source, mask=mask())
    )
    (call,) = fake.calls()
    assert call.path == "image/edits/generative-fill"
    assert call.fields == {"prompt": "blue sky"}
    assert set(call.files) == {"image", "mask"}
    assert outcome.files[0].filename == "filled.png"
    data = outcome.files[0].data
    assert data is not None
    before, after = opened(source).convert("RGB"), opened(data).convert("RGB")
    assert after.getpixel((50, 20)) == before.getpixel((50, 20))  # right half: unmasked
    assert after.getpixel((5, 20)) != before.getpixel((5, 20))  # left half: filled


async def test_object_removal_sends_image_and_mask_without_fields(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    outcome = await finished(
        adapter, jobs("imagine_edit", {"operation": "erase"}, image=images.png(64, 48), mask=mask())
    )
    (call,) = fake.calls()
    assert call.path == "image/edits/remove"
    assert call.content_type == "multipart/form-data"
    assert call.fields == {}
    assert set(call.files) == {"image", "mask"}
    assert outcome.files[0].filename == "erased.png"


async def test_background_remover_returns_transparency(adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs) -> None:
    outcome = await finished(adapter, jobs("imagine_edit", {"operation": "remove_background"}, image=images.png()))
    (call,) = fake.calls()
    assert call.path == "image/background/remover"
    assert set(call.files) == {"image"}
    data = outcome.files[0].data
    assert data is not None
    assert outcome.files[0].filename == "no-background.png"
    assert has_transparency(data)


async def test_enhance_doubles_the_size(adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs) -> None:
    outcome = await finished(adapter, jobs("imagine_upscale", {}, image=images.jpeg(80, 60)))
    (call,) = fake.calls()
    assert call.path == "image/enhance"
    assert call.files["image"][0] == "image.jpg"  # named by content, not by the member's file name
    assert call.files["image"][1] == "image/jpeg"
    data = outcome.files[0].data
    assert data is not None
    assert opened(data).size == (160, 120)
    assert outcome.meta["source"] == "80×60"


async def test_heic_input_is_sent_as_png(adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs) -> None:
    await finished(adapter, jobs("imagine_upscale", {}, image=images.heic(40, 40)))
    upload = fake.calls()[0].files["image"]
    assert upload[1] == "image/png"
    assert opened(upload[2]).format == "PNG"


# --- refused before anything is sent ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "params", "inputs", "problem"),
    [
        ("imagine_image", {"prompt": "x", "style": "oil"}, {}, "style"),
        ("imagine_image", {"prompt": "x", "aspect_ratio": "2:1"}, {}, "aspect_ratio"),
        ("imagine_image", {"prompt": "x", "seed": 0}, {}, "seed"),
        ("imagine_image", {"prompt": "   "}, {}, "empty"),
        ("imagine_image", {"operation": "transparent", "prompt": "x", "style": "anime"}, {}, "style"),
        ("imagine_edit", {"operation": "fill"}, {"image": "png", "mask": "mask"}, "prompt"),
        ("imagine_edit", {"operation": "fill", "prompt": "x"}, {"image": "png"}, "mask"),
        ("imagine_edit", {"operation": "fill", "prompt": "x"}, {"image": "big", "mask": "mask"}, "same size"),
        ("imagine_edit", {"operation": "background", "prompt": "x"}, {"image": "png"}, "transparent"),
        ("imagine_edit", {"operation": "erase", "seed": 4}, {"image": "png", "mask": "mask"}, "seed"),
        ("imagine_upscale", {}, {}, "picture"),
        ("imagine_video", {"operation": "image", "prompt": "x", "aspect_ratio": "1:1"}, {"image": "png"}, "aspect"),
        ("imagine_video", {"prompt": "x", "aspect_ratio": "4:3"}, {}, "aspect_ratio"),
        ("imagine_remix", {"prompt": "x"}, {}, "no feature"),
    ],
)
async def test_bad_requests_are_refused_before_sending(
    adapter: ImagineAdapter,
    fake: FakeImagine,
    jobs: Jobs,
    feature: str,
    params: dict[str, Any],
    inputs: dict[str, str],
    problem: str,
) -> None:
    made = {"png": images.png(64, 48), "mask": mask(), "big": images.png(80, 48)}
    with pytest.raises(InvalidInput) as caught:
        await adapter.submit(jobs(feature, params, **{name: made[kind] for name, kind in inputs.items()}))
    assert problem in caught.value.message
    assert fake.requests == []


# --- errors: every documented code, rate limits, lost answers --------------------------------------------


async def test_wrong_and_expired_keys_are_authentication_errors(
    client: httpx.AsyncClient, fake: FakeImagine, jobs: Jobs
) -> None:
    with pytest.raises(AuthenticationFailed) as wrong:
        await make_adapter(client, fake, key="vk-wrong").submit(jobs("imagine_image", {"prompt": "x"}))
    assert wrong.value.status == 401
    assert "vk-wrong" not in str(wrong.value)
    fake.expired_keys.add("vk-old")
    with pytest.raises(AuthenticationFailed) as expired:
        await make_adapter(client, fake, key="vk-old").submit(jobs("imagine_image", {"prompt": "x"}))
    assert expired.value.status == 406
    fake.fail_next(1000)  # token missing: a 400 that is not an invalid input
    with pytest.raises(AuthenticationFailed) as missing:
        await make_adapter(client, fake).submit(jobs("imagine_image", {"prompt": "x"}))
    assert missing.value.status == 400


async def test_the_api_refusing_a_field_is_invalid_input(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    # Video styles are an open list: a plausible one is sent and the API has the last word.
    with pytest.raises(InvalidInput) as caught:
        await adapter.submit(jobs("imagine_video", {"prompt": "waves", "style": "veo-9"}))
    assert "style" in caught.value.message
    assert caught.value.status == 400
    assert len(fake.calls()) == 1


async def test_out_of_credits(adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs) -> None:
    fake.credits = 0
    with pytest.raises(OutOfCredits) as caught:
        await adapter.submit(jobs("imagine_image", {"prompt": "x"}))
    assert caught.value.status == 402
    assert len(fake.calls()) == 1


async def test_rate_limit_goes_back_to_the_engine_with_retry_after(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    fake.rate_limit, fake.rate_window_s = 1, 60.0
    await finished(adapter, jobs("imagine_image", {"prompt": "first"}))
    with pytest.raises(RateLimited) as caught:
        await adapter.submit(jobs("imagine_image", {"prompt": "second"}))
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 5  # too long to wait in the call: the engine reschedules the job
    assert [r.code for r in fake.calls()] == [None, 1202]


async def test_a_short_retry_after_is_waited_in_the_call_even_for_a_create(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    fake.fail_next(1202, retry_after=0)  # a 429 was refused before anything ran: safe to send again
    await finished(adapter, jobs("imagine_image", {"prompt": "x"}))
    assert [r.code for r in fake.calls()] == [1202, None]


async def test_unavailable_is_transient_and_sent_again(adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs) -> None:
    fake.fail_next(1200, count=5)
    with pytest.raises(Transient) as caught:
        await adapter.submit(jobs("imagine_image", {"prompt": "x"}))
    assert caught.value.status == 503
    assert caught.value.reached is False  # the API said it did not run it: the engine may resubmit
    assert len(fake.calls()) == 3  # two in-call retries
    fake.clear_faults()
    fake.fail_next(1200, count=1)
    await finished(adapter, jobs("imagine_image", {"prompt": "y"}))


@pytest.mark.parametrize(
    ("feature", "params", "route"),
    [
        ("imagine_image", {"prompt": "x"}, "image/generations"),
        ("imagine_video", {"prompt": "x"}, "video/text-to-video"),
    ],
)
async def test_a_dropped_connection_after_the_create_is_never_sent_again(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs, feature: str, params: dict[str, Any], route: str
) -> None:
    fake.credits = 10
    fake.drop_next(route=route)
    with pytest.raises(Transient) as caught:
        await adapter.submit(jobs(feature, params))
    assert caught.value.reached is True  # the engine refunds instead of resending
    assert len(fake.calls()) == 1
    assert fake.calls()[0].fault == "drop"
    assert fake.credits == 9  # it did run and bill


async def test_a_read_timeout_on_a_create_is_never_sent_again(
    client: httpx.AsyncClient, fake: FakeImagine, jobs: Jobs
) -> None:
    adapter = make_adapter(client, fake, read_timeout_s=0.3)
    fake.slow_next(5.0)
    with pytest.raises(Transient) as caught:
        await adapter.submit(jobs("imagine_edit", {"operation": "remove_background"}, image=images.png()))
    assert caught.value.reached is True
    assert len(fake.calls()) == 1


async def test_a_200_that_is_not_an_image_is_transient_and_reached(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    fake.credits = 5
    fake.garbage_next()
    with pytest.raises(Transient) as caught:
        await adapter.submit(jobs("imagine_image", {"prompt": "x"}))
    assert caught.value.reached is True
    assert len(fake.calls()) == 1
    assert fake.credits == 4


# --- videos -----------------------------------------------------------------------------------------------


async def poll(adapter: ImagineAdapter, job: JobContext) -> tuple[list[Pending], Finished | Failed]:
    seen: list[Pending] = []
    for _ in range(400):
        outcome = await adapter.check(job)
        if not isinstance(outcome, Pending):
            return seen, outcome
        seen.append(outcome)
        await asyncio.sleep(0.01)
    raise AssertionError("the video never finished")


@pytest.mark.parametrize(("shape", "id_key"), [("list", "id"), ("string", "uuid")])
async def test_video_from_text_moves_from_processing_to_a_real_mp4(
    client: httpx.AsyncClient, adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs, shape: str, id_key: str
) -> None:
    fake.video_url_shape, fake.video_id_key = shape, id_key
    job = jobs("imagine_video", {"prompt": "waves at night", "aspect_ratio": "16:9"})
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    (call,) = fake.calls()
    assert call.path == "video/text-to-video"
    assert call.content_type == "multipart/form-data"
    assert call.fields == {"prompt": "waves at night", "style": "kling-1.0-pro", "aspect_ratio": "16:9"}
    video_id = submitted.ref["id"]
    assert video_id in fake.videos
    job = with_ref(job, submitted)
    fake.set_status(video_id, "processing")  # held there until the test lets the clock run
    for _ in range(3):
        pending = await adapter.check(job)
        assert isinstance(pending, Pending)
        assert pending.running is True
    fake.set_status(video_id, None)
    _, outcome = await poll(adapter, job)
    assert isinstance(outcome, Finished)
    (result,) = outcome.files
    assert result.kind == "video"
    assert result.filename == "video.mp4"
    assert result.url is not None
    assert outcome.meta["video"] == video_id
    data = await fetch(client, result.url, allow_private=True)
    info = probe(data)
    assert (info.width, info.height, info.codec) == (112, 64, "h264")
    polls = [r for r in fake.requests if r.method == "GET" and r.path.startswith("video/")]
    assert polls
    assert all(r.path == f"video/{video_id}/status" for r in polls)


async def test_video_from_a_picture_sends_it_as_file(adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs) -> None:
    job = jobs("imagine_video", {"operation": "image", "prompt": "make it move"}, image=images.png(96, 64))
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    (call,) = fake.calls()
    assert call.path == "video/image-to-video"
    assert set(call.files) == {"file"}  # not "image": the documented gotcha
    assert call.fields == {"prompt": "make it move", "style": "kling-1.0-pro"}
    _, outcome = await poll(adapter, with_ref(job, submitted))
    assert isinstance(outcome, Finished)


async def test_every_status_word(adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs) -> None:
    job = jobs("imagine_video", {"prompt": "a cat"})
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    job = with_ref(job, submitted)
    video_id = submitted.ref["id"]
    for word in ("queued", "pending"):
        fake.set_status(video_id, word)
        outcome = await adapter.check(job)
        assert isinstance(outcome, Pending)
        assert outcome.running is False
    for word in ("generating", "running", "processing", "in_progress", "something-new"):
        fake.set_status(video_id, word)
        outcome = await adapter.check(job)
        assert isinstance(outcome, Pending)
        assert outcome.running is True
    for word, kind in (
        ("error", ErrorKind.FAILED),
        ("failed", ErrorKind.FAILED),
        ("rejected", ErrorKind.FAILED),
        ("cancelled", ErrorKind.CANCELLED),
        ("canceled", ErrorKind.CANCELLED),
    ):
        fake.set_status(video_id, word)
        failed = await adapter.check(job)
        assert isinstance(failed, Failed), word
        assert failed.kind == kind
    for word in ("finished", "success"):
        fake.set_status(video_id, word)
        assert isinstance(await adapter.check(job), Finished)


async def test_a_video_that_fails_on_the_clock(adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs) -> None:
    job = jobs("imagine_video", {"prompt": "FAILME please"})
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    _, outcome = await poll(adapter, with_ref(job, submitted))
    assert isinstance(outcome, Failed)
    assert outcome.message == "The video could not be generated"


async def test_finished_without_a_link_is_a_failure(client: httpx.AsyncClient, fake: FakeImagine, jobs: Jobs) -> None:
    # An older status route, set by configuration, answering a bare video object without url.
    adapter = make_adapter(client, fake, video_status_path="video/status/{id}")
    job = jobs("imagine_video", {"prompt": "a dog"})
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    fake.set_status(submitted.ref["id"], "finished")
    fake.video_url_shape = "none"
    outcome = await adapter.check(with_ref(job, submitted))
    assert isinstance(outcome, Failed)
    assert fake.requests[-1].path == f"video/status/{submitted.ref['id']}"


async def test_a_bare_status_object_and_its_error_status(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    fake.video_bare = True
    job = jobs("imagine_video", {"prompt": "a bird"})
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    job = with_ref(job, submitted)
    fake.set_status(submitted.ref["id"], "error")  # a video's "status": "error", not an error answer
    failed = await adapter.check(job)
    assert isinstance(failed, Failed)
    assert failed.kind == ErrorKind.FAILED
    fake.set_status(submitted.ref["id"], "success")
    done = await adapter.check(job)
    assert isinstance(done, Finished)
    assert done.files[0].url is not None


async def test_recover_cannot_find_anything(adapter: ImagineAdapter, jobs: Jobs) -> None:
    assert await adapter.recover(jobs("imagine_image", {"prompt": "x"})) is None
    assert await adapter.recover(jobs("imagine_video", {"prompt": "x"})) is None


# --- settings and choices ---------------------------------------------------------------------------------


async def test_built_from_settings(client: httpx.AsyncClient, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        database_path=tmp_path / "easel.db",
        imagine_api_key="vk-secret",
        imagine_base_url="https://imagine.example/v2",
    )
    adapter = build_adapters(settings, client)["imagine"]
    assert isinstance(adapter, ImagineAdapter)
    assert adapter.http.url("image/enhance") == "https://imagine.example/v2/image/enhance"
    default = Settings(_env_file=None, database_path=tmp_path / "easel.db", imagine_api_key="vk-x")
    assert build_adapters(default, client)["imagine"].base_url == "https://api.vyro.ai/v2"
    assert adapter.deadline("imagine_video") == 30 * 60


def test_documented_choices_have_labels() -> None:
    assert set(IMAGE_STYLES) == {
        "imagine-turbo",
        "realistic",
        "anime",
        "flux-schnell",
        "flux-dev",
        "flux-dev-fast",
        "sdxl-1.0",
    }
    assert list(IMAGE_ASPECTS) == ["1:1", "3:2", "4:3", "3:4", "16:9", "9:16"]
    assert IMAGE_ASPECTS["3:4"] == "3:4 portrait"
    assert list(VIDEO_ASPECTS) == ["1:1", "16:9", "9:16"]


async def test_a_dropped_status_poll_is_safe_to_send_again(
    adapter: ImagineAdapter, fake: FakeImagine, jobs: Jobs
) -> None:
    job = jobs("imagine_video", {"prompt": "a boat"})
    submitted = await adapter.submit(job)
    assert isinstance(submitted, Submitted)
    video_id = submitted.ref["id"]
    fake.set_status(video_id, "running")
    fake.drop_next(route=f"video/{video_id}/status")
    outcome = await adapter.check(with_ref(job, submitted))
    assert isinstance(outcome, Pending)
    polls = [r for r in fake.requests if r.method == "GET"]
    assert [r.fault for r in polls] == ["drop", None]  # a GET is retried in the call; a create never is
