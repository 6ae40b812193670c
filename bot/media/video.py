"""Videos by content: what a file is (`probe`), and re-encoding one to fit an upload limit (`fit_video`).

Discord refuses attachments over the server's limit; a provider's video is often a little over it. Rather
than dropping it, it is re-encoded as MP4 (H.264, plus AAC if it has sound) at the bitrate the limit allows
for its duration, scaled down when that bitrate is too low for its size. CPU work, synchronous: callers
run it off the event loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from bot.media import MediaError

log = logging.getLogger(__name__)

CONTAINER_OVERHEAD = 0.04  # of the limit, for the MP4 boxes and the encoder's overshoot
AUDIO_BITRATE = 96_000
AUDIO_BITRATE_LOW = 48_000  # when the limit is tight
MIN_VIDEO_BITRATE = 40_000  # below this nothing watchable comes out
BITS_PER_PIXEL = 0.06  # H.264 at "fine for a chat": below it, scale down rather than smear
MIN_HEIGHT = 144
MAX_ATTEMPTS = 4
MAX_FPS = 30


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration: float  # seconds
    codec: str  # the video codec, e.g. "h264"
    fps: float = 0.0
    audio_codec: str | None = None
    container: str = ""


def _open(data: bytes) -> Any:
    try:
        return av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError) as exc:
        raise MediaError("that file is not a video I can read") from exc


def probe(data: bytes) -> VideoInfo:
    """Size, duration and codecs of a video; MediaError if it is not one."""
    with _open(data) as container:
        if not container.streams.video:
            raise MediaError("that file has no video in it")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = _duration(container, video)
        rate = video.average_rate or video.guessed_rate
        return VideoInfo(
            width=video.codec_context.width,
            height=video.codec_context.height,
            duration=duration,
            codec=video.codec_context.name,
            fps=float(rate) if rate else 0.0,
            audio_codec=audio.codec_context.name if audio is not None else None,
            container=container.format.name,
        )


def _duration(container: Any, video: Any) -> float:
    if container.duration:
        return float(container.duration) / 1_000_000
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    last = 0.0  # no header says: decode the packets' times
    for packet in container.demux(video):
        if packet.pts is not None and packet.time_base:
            last = max(last, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    container.seek(0)
    return last


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _plan(info: VideoInfo, limit: int, budget_factor: float) -> tuple[int, int | None, int, int] | None:
    """(video bitrate, audio bitrate, width, height) for a target, or None if nothing watchable fits."""
    duration = max(info.duration, 0.1)
    total = limit * 8 * (1 - CONTAINER_OVERHEAD) * budget_factor / duration
    audio = None
    if info.audio_codec is not None:
        audio = AUDIO_BITRATE if total > 8 * AUDIO_BITRATE else AUDIO_BITRATE_LOW
    video = int(total - (audio or 0))
    if video < MIN_VIDEO_BITRATE:
        return None
    fps = min(info.fps or 25.0, MAX_FPS)
    width, height = info.width, info.height
    pixels_allowed = video / (BITS_PER_PIXEL * fps)
    if width * height > pixels_allowed:
        scale = math.sqrt(pixels_allowed / (width * height))
        floor = min(1.0, MIN_HEIGHT / max(1, min(width, height)))
        scale = max(scale, floor)
        width, height = round(width * scale), round(height * scale)
    return video, audio, _even(width), _even(height)


def _encode(data: bytes, info: VideoInfo, video_rate: int, audio_rate: int | None, width: int, height: int) -> bytes:
    out = io.BytesIO()
    fps = Fraction(min(info.fps or 25.0, MAX_FPS)).limit_denominator(1001)
    with _open(data) as source, av.open(out, mode="w", format="mp4") as target:
        src_video = source.streams.video[0]
        src_audio = source.streams.audio[0] if audio_rate is not None and source.streams.audio else None
        video = target.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = video_rate
        # A capped VBV keeps x264's one-pass ABR from overshooting the budget on busy scenes.
        video.options = {
            "preset": "veryfast",
            "maxrate": str(int(video_rate * 1.2)),
            "bufsize": str(int(video_rate * 2)),
            "movflags": "+faststart",
        }
        audio = None
        resampler = None
        if src_audio is not None and audio_rate is not None:
            rate = src_audio.codec_context.sample_rate or 44100
            layout = "mono" if src_audio.codec_context.channels == 1 else "stereo"
            audio = target.add_stream("aac", rate=rate)
            audio.layout = layout
            audio.bit_rate = audio_rate
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=1024)
        streams = [src_video] + ([src_audio] if src_audio is not None else [])
        last_pts = -1
        for frame in source.decode(*streams):
            if isinstance(frame, av.VideoFrame):
                if frame.time is None:
                    continue
                pts = round(frame.time * fps)
                if pts <= last_pts:  # a variable-rate source: drop frames that land on the same tick
                    continue
                last_pts = pts
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = pts, Fraction(1) / fps
                for packet in video.encode(scaled):
                    target.mux(packet)
            elif audio is not None and resampler is not None:
                frame.pts = None
                for chunk in resampler.resample(frame):
                    for packet in audio.encode(chunk):
                        target.mux(packet)
        for packet in video.encode():
            target.mux(packet)
        if audio is not None and resampler is not None:
            for chunk in resampler.resample(None):
                for packet in audio.encode(chunk):
                    target.mux(packet)
            for packet in audio.encode():
                target.mux(packet)
    return out.getvalue()


def fit_video(data: bytes, limit: int) -> bytes | None:
    """The video as an MP4 (H.264, AAC) of at most `limit` bytes, or None if it cannot be made to fit.
    An H.264 MP4 already within the limit comes back unchanged."""
    info = probe(data)
    if len(data) <= limit and info.codec == "h264" and "mp4" in info.container:
        return data
    factor = 1.0
    for attempt in range(MAX_ATTEMPTS):
        chosen = _plan(info, limit, factor)
        if chosen is None:
            return None
        video_rate, audio_rate, width, height = chosen
        try:
            encoded = _encode(data, info, video_rate, audio_rate, width, height)
        except av.FFmpegError as exc:
            raise MediaError("that video could not be re-encoded") from exc
        if len(encoded) <= limit:
            return encoded
        log.info("fit_video attempt %d: %d bytes over a %d limit; trying lower", attempt + 1, len(encoded), limit)
        factor *= limit / len(encoded) * 0.9
    return None
