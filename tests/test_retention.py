"""Retention end to end: the real bot with the fake studio and the fake mimpi (real training sets, real
training jobs), the real data folder, and /metrics over HTTP."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.jobs.engine import ProviderLimits
from bot.jobs.model import JobStatus
from bot.retention import REMOVED_KEY, Retention
from bot.settings import Settings
from tests.conftest import EaselFactory
from tests.emulator import DiscordEmulator, Member
from tests.fakes.mimpi import FakeMimpi
from tests.fakes.studio import FakeStudio
from tests.harness import Easel, eventually
from tests.test_jobs import FAST, run_job, studio_factory
from tests.test_portraits import LIVE, make_set, train

DAY = 86_400.0


@pytest.fixture
async def studio() -> AsyncIterator[FakeStudio]:
    fake = await FakeStudio().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def mimpi() -> AsyncIterator[FakeMimpi]:
    server = FakeMimpi(api_key=LIVE)
    await server.start()
    yield server
    await server.stop()


async def start(easel_factory: EaselFactory, studio: FakeStudio, mimpi: FakeMimpi, **settings: Any) -> Easel:
    mimpi_limits = ProviderLimits(min_poll_s=0.02, max_poll_s=0.2, retry_base_s=0.01, max_active={"models": 30})
    return await easel_factory(
        adapter_factory=studio_factory(studio),
        extra_extensions=("tests.ext.studio",),
        provider_limits_override={
            **dict.fromkeys(("studio_sync", "studio_poll", "studio_cb"), FAST),
            "mimpi": mimpi_limits,
        },
        mimpi_api_key=LIVE,
        mimpi_base_url=mimpi.base_url,
        portrait_min_images=3,
        portrait_recommended_images=3,
        portrait_max_images=6,
        quota_server_allowance=1000,
        **settings,
    )


def retention(easel: Easel) -> Retention:
    cog = easel.bot.get_cog("RetentionTask")
    assert cog is not None
    found = getattr(cog, "retention", None)
    assert isinstance(found, Retention)
    return found


def age(path: Path, days: float) -> None:
    when = time.time() - days * DAY
    os.utime(path, (when, when))


async def photo_paths(easel: Easel, user_id: int) -> list[Path]:
    rows = await easel.bot.db.fetchall(
        "SELECT p.sha256 FROM training_images p JOIN training_sets s ON s.id = p.set_id WHERE s.user_id = ?",
        (user_id,),
    )
    assert rows
    return [easel.bot.jobs.files.input_path(str(r["sha256"])) for r in rows]


async def delivered(emulator: DiscordEmulator, prompt: str, member: Member) -> str:
    ix, job_id = await run_job(emulator, member, style="sync", prompt=prompt)
    await ix.wait_followup(lambda m: bool(m["attachments"]), timeout=10)
    return job_id


def test_a_blank_retention_setting_keeps_files() -> None:
    assert Settings(_env_file=None, retention_days="").retention_days is None  # type: ignore[call-arg]
    assert Settings(_env_file=None, retention_days="30").retention_days == 30  # type: ignore[call-arg]
    assert Settings(_env_file=None).retention_remove_trained_photos is True  # type: ignore[call-arg]
    blank = Settings(_env_file=None, retention_remove_trained_photos="", content_age_restricted_only="")  # type: ignore[call-arg]
    assert (blank.retention_remove_trained_photos, blank.content_age_restricted_only) == (True, False)


async def test_old_files_go_and_what_open_jobs_and_sets_need_stays(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, mimpi: FakeMimpi
) -> None:
    mimpi.auto_advance = False
    easel = await start(easel_factory, studio, mimpi, retention_days=7)
    files = easel.bot.jobs.files
    ann = emulator.add_member("ann")
    old_job = await delivered(emulator, "an old fox", ann)
    new_job = await delivered(emulator, "a new fox", emulator.add_member("bob"))
    # An open training set (its photos wait for /portrait train) and a training in flight (its job's inputs).
    collecting, training = emulator.add_member("cat"), emulator.add_member("dan")
    await make_set(emulator, collecting, 3)
    await make_set(emulator, training, 3)
    _ix, training_job = await train(emulator, training)
    model_id = await emulator.wait_for(lambda: next(iter(mimpi.models), None))
    # A file nothing uses any more (a crash between storing and recording it).
    orphan = files.input_path(await files.put_input(b"left behind"))
    stray = files.result_dir("nosuchjob")  # results of a job the database never recorded
    stray.mkdir(parents=True)
    (stray / "00_image.png").write_bytes(b"stray")

    # Everything on disk is old; in the database only the first job is.
    for path in [*files.inputs.rglob("*"), *files.results.rglob("*")]:
        age(path, 8)
    await easel.bot.db.execute(
        "UPDATE jobs SET finished_at = ?, updated_at = ? WHERE id = ?", (time.time() - 8 * DAY,) * 2 + (old_job,)
    )
    old_results = await easel.bot.jobs.store.results(old_job)
    assert all(files.resolve(r.path).exists() for r in old_results)

    report = await retention(easel).run()

    assert (report.results, report.inputs) == (1, 1)
    assert report.bytes_freed >= sum(r.size for r in old_results)
    assert not files.result_dir(old_job).exists()
    assert not orphan.exists()
    assert not stray.exists()
    assert files.result_dir(new_job).exists(), "a result younger than the period stays"
    assert all(p.exists() for p in await photo_paths(easel, collecting.id)), "an open set's photos stay"
    assert all(p.exists() for p in await photo_paths(easel, training.id)), "a running job's inputs stay"
    # The job itself stays: history and totals; it notes that its files are gone.
    job = await easel.bot.jobs.store.get(old_job)
    assert job is not None
    assert job.status is JobStatus.SUCCEEDED
    assert job.credits == 1
    assert REMOVED_KEY in job.meta
    assert await easel.bot.jobs.store.results(old_job) == old_results
    shown = await emulator.invoke("jobs", {"job": old_job}, user=ann)
    await shown.response()
    message = await shown.wait_original(lambda m: bool(m.get("embeds")))
    assert message["attachments"] == []
    assert (await retention(easel).run()).results == 0, "done once"

    # Once the model is trained, its photos go (RETENTION_REMOVE_TRAINED_PHOTOS defaults to on).
    await mimpi.complete_model(model_id)
    trained = await photo_paths(easel, training.id)
    await eventually(lambda: _gone(trained), within=10)
    assert (await easel.bot.jobs.store.get(training_job)) is not None
    assert all(p.exists() for p in await photo_paths(easel, collecting.id))


async def _gone(paths: list[Path]) -> bool:
    return not any(p.exists() for p in paths)


async def test_trained_photos_kept_when_asked_then_removed_by_age_or_by_the_setting(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, mimpi: FakeMimpi
) -> None:
    easel = await start(easel_factory, studio, mimpi, retention_remove_trained_photos=False)
    member = emulator.add_member("eve")
    await make_set(emulator, member, 3)
    _ix, job_id = await train(emulator, member)

    async def succeeded() -> bool:
        job = await easel.bot.jobs.store.get(job_id)
        return job is not None and job.status is JobStatus.SUCCEEDED

    await eventually(succeeded, within=10)
    photos = await photo_paths(easel, member.id)
    assert all(p.exists() for p in photos), "kept after training when the setting is off"
    assert (await retention(easel).run()).trained_photos == 0
    assert all(p.exists() for p in photos)

    # With a retention period, kept photos still go once they are older than it.
    await easel.restart(retention_days=7)
    await easel.bot.db.execute("UPDATE training_images SET added_at = ?", (time.time() - 8 * DAY,))
    for path in photos:
        age(path, 8)
    report = await retention(easel).run()
    assert report.inputs == 3
    assert not any(p.exists() for p in photos)


async def test_the_setting_on_removes_photos_kept_from_before(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, mimpi: FakeMimpi
) -> None:
    easel = await start(easel_factory, studio, mimpi, retention_remove_trained_photos=False)
    member = emulator.add_member("fin")
    await make_set(emulator, member, 3)
    await train(emulator, member)
    photos = await photo_paths(easel, member.id)
    await eventually(lambda: _job_done(easel), within=10)
    assert all(p.exists() for p in photos)
    await easel.restart(retention_remove_trained_photos=True)
    report = await retention(easel).run()
    assert report.trained_photos == 3
    assert not any(p.exists() for p in photos)


async def _job_done(easel: Easel) -> bool:
    row = await easel.bot.db.fetchone("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'")
    return row is not None and int(row[0]) == 1


async def test_the_data_folder_size_is_on_metrics(
    emulator: DiscordEmulator, easel_factory: EaselFactory, studio: FakeStudio, mimpi: FakeMimpi
) -> None:
    easel = await start(easel_factory, studio, mimpi)

    async def gauge() -> float | None:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{easel.web_url}/metrics")).text
        line = next((x for x in text.splitlines() if x.startswith("easel_data_dir_bytes ")), None)
        return None if line is None else float(line.split()[1])

    first = await eventually(gauge)  # measured at start, off the event loop
    assert first is not None
    assert first >= easel.settings.database_path.stat().st_size
    (easel.settings.data_dir / "big.bin").write_bytes(b"\0" * 1_000_000)
    assert await gauge() == first, "/metrics shows the cached figure; it never walks the disk itself"
    await retention(easel).measure()
    after = await gauge()
    assert after is not None
    assert after >= first + 1_000_000
