"""Real videos and pictures through probe, fit_video and fit_image: sizes, codecs, alpha kept."""

from __future__ import annotations

import io
import random

import av
import numpy as np
import pytest
from PIL import Image

from bot.media import MediaError
from bot.media.fit import fit_image, has_transparency
from bot.media.video import fit_video, probe
from tests.fakes import images
from tests.fakes.video import make_mp4


@pytest.fixture(scope="module")
def noisy_clip() -> bytes:
    """Hard to compress, with sound: ~1 MB for one second of 320x240."""
    return make_mp4(320, 240, seconds=1.0, fps=12, noise=True, audio=True, label="noisy")


def test_probe_reads_size_duration_and_codecs(noisy_clip: bytes) -> None:
    info = probe(noisy_clip)
    assert (info.width, info.height, info.codec, info.audio_codec) == (320, 240, "h264", "aac")
    assert info.duration == pytest.approx(1.0, abs=0.15)
    assert info.fps == pytest.approx(12.0)
    silent = probe(make_mp4(64, 48, seconds=0.5))
    assert silent.audio_codec is None


def test_probe_refuses_what_is_not_a_video() -> None:
    with pytest.raises(MediaError):
        probe(b"certainly not a video" * 100)


def test_a_video_over_the_limit_is_re_encoded_to_fit(noisy_clip: bytes) -> None:
    limit = 60_000
    assert len(noisy_clip) > 10 * limit
    fitted = fit_video(noisy_clip, limit)
    assert fitted is not None
    assert len(fitted) <= limit
    info = probe(fitted)
    assert (info.codec, info.audio_codec) == ("h264", "aac")
    assert info.duration == pytest.approx(1.0, abs=0.2)
    assert fitted[4:8] == b"ftyp"
    assert info.width % 2 == 0
    assert info.height % 2 == 0
    assert info.width <= 320


def test_a_tight_limit_scales_the_picture_down() -> None:
    clip = make_mp4(640, 480, seconds=1.0, fps=12, noise=True, label="big")
    fitted = fit_video(clip, 40_000)
    assert fitted is not None
    assert len(fitted) <= 40_000
    info = probe(fitted)
    assert info.width < 640
    assert info.width / info.height == pytest.approx(4 / 3, rel=0.05)


def test_an_impossible_limit_gives_none(noisy_clip: bytes) -> None:
    assert fit_video(noisy_clip, 2_000) is None


def webm(width: int, height: int, frames: int = 6) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), index * 40, dtype=np.uint8), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def test_a_webm_within_the_limit_still_becomes_an_h264_mp4() -> None:
    source = webm(64, 48)
    assert probe(source).codec == "vp8"
    fitted = fit_video(source, 200_000)
    assert fitted is not None
    assert len(fitted) <= 200_000
    info = probe(fitted)
    assert (info.codec, info.width, info.height) == ("h264", 64, 48)
    assert "mp4" in info.container


def test_an_h264_mp4_within_the_limit_comes_back_unchanged() -> None:
    clip = make_mp4(64, 48, seconds=0.5)
    assert fit_video(clip, len(clip)) == clip


# --- fit_image ---------------------------------------------------------------------------------------------


def transparent_png(size: int, seed: int = 3) -> bytes:
    """A noisy subject on transparent pixels: large as PNG."""
    rnd = random.Random(seed)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    subject = Image.frombytes("RGB", (size // 2, size // 2), rnd.randbytes(3 * (size // 2) ** 2)).convert("RGBA")
    image.paste(subject, (size // 4, size // 4))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_a_transparent_png_over_the_limit_shrinks_and_keeps_its_transparency() -> None:
    data = transparent_png(600)
    limit = len(data) // 4
    fitted = fit_image(data, limit)
    assert fitted is not None
    out, fmt = fitted
    assert len(out) <= limit
    assert fmt in ("png", "webp")
    image = Image.open(io.BytesIO(out))
    assert image.format.lower() == fmt
    assert has_transparency(out)
    corner = image.convert("RGBA").getpixel((0, 0))
    assert isinstance(corner, tuple)
    assert corner[3] == 0


def test_a_palette_png_with_a_transparent_colour_keeps_it() -> None:
    rnd = random.Random(5)
    image = Image.new("P", (500, 500), 0)
    image.putdata([rnd.randrange(1, 256) for _ in range(500 * 250)] + [0] * (500 * 250))
    image.putpalette([rnd.randrange(256) for _ in range(768)])
    out = io.BytesIO()
    image.save(out, "PNG", transparency=0)
    data = out.getvalue()
    fitted = fit_image(data, len(data) // 3)
    assert fitted is not None
    assert len(fitted[0]) <= len(data) // 3
    assert fitted[1] in ("png", "webp")
    assert has_transparency(fitted[0])


def test_an_opaque_picture_may_become_jpeg() -> None:
    data = images.noisy_png(400, 400)
    fitted = fit_image(data, len(data) // 5)
    assert fitted is not None
    out, fmt = fitted
    assert fmt == "jpeg"
    assert len(out) <= len(data) // 5
    assert not has_transparency(out)


def test_within_the_limit_is_untouched_and_impossible_is_none() -> None:
    data = transparent_png(100)
    assert fit_image(data, len(data)) == (data, "png")
    assert fit_image(transparent_png(600), 300) is None
