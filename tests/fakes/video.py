"""Real MP4 files for the fakes and tests: H.264 (and AAC) made with PyAV, small and deterministic."""

from __future__ import annotations

import hashlib
import io
import math
from fractions import Fraction

import av
import numpy as np


def _colour(label: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(label.encode()).digest()
    return digest[0], digest[1], digest[2]


def make_mp4(
    width: int = 64,
    height: int = 64,
    *,
    seconds: float = 1.0,
    fps: int = 12,
    label: str = "easel",
    audio: bool = False,
    noise: bool = False,
    bitrate: int | None = None,
) -> bytes:
    """A moving picture: a bar sweeping over a background coloured from `label`. `noise` adds random pixels
    (hard to compress: for size-limit tests); `audio` adds a 440 Hz tone in AAC."""
    out = io.BytesIO()
    frames = max(1, round(seconds * fps))
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(label.encode()).digest()[:4], "big"))
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        options = {"preset": "ultrafast"}
        if bitrate is not None:
            stream.bit_rate = bitrate
        else:
            options["crf"] = "18" if noise else "28"
        stream.options = options
        sound = container.add_stream("aac", rate=44100) if audio else None
        if sound is not None:
            sound.layout = "mono"
        background = np.array(_colour(label), dtype=np.uint8)
        for index in range(frames):
            picture = np.empty((height, width, 3), dtype=np.uint8)
            picture[:] = background
            if noise:
                picture[:] = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            x = (index * max(1, width // frames)) % width
            picture[:, x : x + max(2, width // 8)] = (255, 255, 255)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            samples_total = round(seconds * 44100)
            chunk = 1024
            for start in range(0, samples_total, chunk):
                count = min(chunk, samples_total - start)
                t = (np.arange(start, start + count) / 44100).astype(np.float32)
                tone = (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                frame.sample_rate = 44100
                frame.pts = start
                frame.time_base = Fraction(1, 44100)
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return out.getvalue()
