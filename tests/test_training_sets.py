"""The shared training-set store and each studio's image rules: real SQLite files, real images."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.errors import BadInput
from bot.jobs.files import FileStore
from bot.storage.database import Database, bundled_migrations
from bot.training import NewImage, TrainingSetStore, as_jpeg, keep_format, member_key, parse_numbers
from tests.fakes import images

GPS_TAG = 0x8825
ORIENTATION_TAG = 0x0112


def with_gps_and_rotation(fmt: str) -> bytes:
    """A 400x200 picture whose EXIF says: GPS position, and 'rotate 90° to show' (orientation 6)."""
    image = Image.new("RGB", (400, 200), (200, 40, 40))
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    exif[GPS_TAG] = {1: "N", 2: (48.0, 51.0, 24.0)}
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes())
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ---------------------------------------------------------------- each studio's rules for an image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_metadata_is_dropped_and_pictures_turned_upright(fmt: str) -> None:
    source = with_gps_and_rotation(fmt)
    assert GPS_TAG in opened(source).getexif(), "the source really carries a position"
    for prepared in (as_jpeg(source), keep_format(source, 10 * 1024 * 1024)):
        result = opened(prepared.data)
        assert GPS_TAG not in result.getexif()
        assert (result.width, result.height) == (prepared.width, prepared.height) == (200, 400)


def test_flair_keeps_png_and_webp_and_their_transparency_mimpi_gets_jpeg() -> None:
    rgba = Image.new("RGBA", (300, 300), (10, 200, 10, 0))
    for fmt in ("PNG", "WEBP"):
        out = io.BytesIO()
        rgba.save(out, fmt)
        kept = keep_format(out.getvalue(), 10 * 1024 * 1024)
        assert kept.format == fmt.lower()
        result = opened(kept.data)
        assert result.format == fmt
        assert result.mode == "RGBA"
        assert result.getpixel((5, 5))[3] == 0, "transparency is part of a style"
        flat = as_jpeg(out.getvalue())
        assert (flat.format, opened(flat.data).format) == ("jpeg", "JPEG")
        assert opened(flat.data).getpixel((5, 5)) == pytest.approx((255, 255, 255), abs=3), "on white, not black"


def test_heic_becomes_jpeg_and_oversize_is_shrunk_under_the_limit() -> None:
    converted = keep_format(images.heic(320, 240), 10 * 1024 * 1024)
    assert (converted.format, opened(converted.data).format) == ("jpeg", "JPEG")
    noisy = images.noisy_png(1200, 1200)
    limit = 300 * 1024
    assert len(noisy) > limit
    shrunk = keep_format(noisy, limit)
    assert len(shrunk.data) <= limit
    assert (opened(shrunk.data).width, opened(shrunk.data).height) == (shrunk.width, shrunk.height)


def test_large_pictures_are_scaled_down_to_2048() -> None:
    big = images.png(3000, 1500)
    for prepared in (as_jpeg(big), keep_format(big, 10 * 1024 * 1024)):
        assert (prepared.width, prepared.height) == (2048, 1024)


@pytest.mark.parametrize(
    ("text", "count", "expected"),
    [("2, 5-7", 8, {2, 5, 6, 7}), ("7-5 1", 8, {1, 5, 6, 7}), ("3,3", 3, {3})],
)
def test_numbers(text: str, count: int, expected: set[int]) -> None:
    assert parse_numbers(text, count) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("0", "photos 1 to 5"), ("4-9", "photos 1 to 5"), ("two", "not a photo number"), (",", "Give the numbers")],
)
def test_bad_numbers(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse_numbers(text, 5)


# ---------------------------------------------------------------- the store


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "easel.db")
    yield database
    await database.close()


def image(files: FileStore, label: str) -> NewImage:
    data = images.png(300, 300, label=label)
    sha = files.sha256(data)
    path = files.input_path(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return NewImage(sha, f"{label}.png", "png", len(data), 300, 300)


async def test_adds_at_once_never_pass_the_limit_and_duplicates_are_told(db: Database, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    store = TrainingSetStore(db, files)
    made = await store.create_set("style", 1, "s:abc", 7, name="Ink")
    assert made is not None
    assert await store.create_set("style", 1, "s:abc", 7, name="Ink again") is None, "one open set per owner"
    batches = [[image(files, f"{b}-{n}") for n in range(3)] for b in range(4)]
    results = await asyncio.gather(*(store.add_images(made.id, b, 5, added_by=7) for b in batches))
    assert sum(len(r.added) for r in results) == 5
    assert sum(len(r.over_limit) for r in results) == 7
    again = await store.add_images(made.id, [batches[0][0]], 5, added_by=7)
    assert again.duplicates == ["0-0.png"]
    stored = await store.images(made.id)
    assert [i.number for i in stored] == [1, 2, 3, 4, 5]
    assert {i.added_by for i in stored} == {7}


async def test_files_are_deleted_only_when_no_open_set_needs_them(db: Database, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    store = TrainingSetStore(db, files)
    portrait = await store.create_set("portrait", 1, member_key(7), 7, name="Me", subject="man")
    style = await store.create_set("style", 1, "s:abc", 7, name="Ink")
    assert portrait is not None and style is not None
    shared, own = image(files, "shared"), image(files, "own")
    await store.add_images(portrait.id, [shared, own], 10, added_by=7)
    await store.add_images(style.id, [shared], 10, added_by=7)
    removed = await store.remove_images(portrait.id, [shared.sha256, own.sha256])
    assert removed == 2
    assert files.input_path(shared.sha256).exists(), "the style set still uses it"
    assert not files.input_path(own.sha256).exists()
    assert [i.filename for i in await store.images(portrait.id)] == []

    assert await store.erase_member("portrait", 1, 7) == 1, "one studio's sets at a time"
    assert await store.get_set(style.id) is not None
    assert await store.erase_owner("style", 1, "s:abc") == 1
    assert not files.input_path(shared.sha256).exists()


async def test_migration_moves_portrait_sets_into_the_shared_store(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    migrations = bundled_migrations()
    before = [m for m in migrations if m.version < 9]
    old = await Database.open(path, before)
    await old.execute(
        "INSERT INTO portrait_sets (id, guild_id, user_id, subject, name, status, created_at, updated_at) "
        "VALUES (5, 1, 7, 'woman', 'Ana', 'open', 1.0, 2.0)"
    )
    await old.execute(
        "INSERT INTO portrait_photos (set_id, seq, sha256, filename, format, size, width, height, added_at) "
        "VALUES (5, 1, 'aa', 'a.jpg', 'jpeg', 10, 300, 300, 1.5), (5, 2, 'bb', 'b.jpg', 'jpeg', 10, 300, 300, 1.6)"
    )
    await old.close()

    new = await Database.open(path, migrations)
    try:
        store = TrainingSetStore(new, FileStore(tmp_path / "files"))
        moved = await store.open_set("portrait", 1, member_key(7))
        assert moved is not None
        assert (moved.id, moved.user_id, moved.subject, moved.name) == (5, 7, "woman", "Ana")
        assert [(i.number, i.sha256, i.added_by) for i in await store.images(5)] == [(1, "aa", 7), (2, "bb", 7)]
        gone = await new.fetchone("SELECT name FROM sqlite_master WHERE name = 'portrait_sets'")
        assert gone is None
    finally:
        await new.close()
