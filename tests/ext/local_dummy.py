"""Test-only renderers for the local studio's pool: each is a (bytes, dict) -> Rendered run in a worker."""

from __future__ import annotations

import ctypes
import hashlib
import io
import os
import resource
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from bot.providers.local.common import Output, Rendered, RenderError, open_capped, to_rgb_array


def render_invert(data: bytes, params: dict[str, Any]) -> Rendered:
    """The input's negative as a PNG, plus a text file kept for buttons; facts about the worker in meta."""
    pixels = 255 - to_rgb_array(open_capped(data))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    soft_as, _ = resource.getrlimit(resource.RLIMIT_AS)
    meta = {
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "pid": os.getpid(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "cv2_threads": cv2.getNumThreads(),
        "memory_limited": soft_as != resource.RLIM_INFINITY,
        "params": params,
        "env": sorted(os.environ),
    }
    note = Output(
        "note.txt", f"inverted {pixels.shape[1]}x{pixels.shape[0]}".encode(), kind="file", label="note", send=False
    )
    return Rendered([Output("negative.png", out.getvalue()), note], text="inverted", meta=meta)


def render_big(data: bytes, params: dict[str, Any]) -> Rendered:
    """`mb` megabytes of pseudo-random bytes, with their SHA-256 in meta: large answers arrive whole."""
    blob = np.random.default_rng(int(params.get("seed", 1))).integers(0, 256, int(params["mb"]) << 20, np.uint8)
    body = blob.tobytes()
    meta = {"sha256": hashlib.sha256(body).hexdigest(), "input_sha256": hashlib.sha256(data).hexdigest()}
    return Rendered([Output("big.bin", body, kind="file")], meta=meta)


def render_wait(data: bytes, params: dict[str, Any]) -> Rendered:
    """Holds its worker until the file `gate` exists (or `seconds` pass): the test decides when it ends.
    Writes its pid to `started` when it begins and appends `tag` to `log` when it ends."""
    gate = Path(str(params.get("gate", "/nonexistent")))
    started = Path(str(params["started"])) if "started" in params else None
    if started is not None:
        started.write_text(str(os.getpid()))
    limit = time.monotonic() + float(params.get("seconds", 60))
    while not gate.exists() and time.monotonic() < limit:
        time.sleep(0.02)
    if "log" in params:
        with open(params["log"], "a") as log:
            log.write(f"{params.get('tag')}\n")
    meta = {**params, "gate_opened": gate.exists()}
    return Rendered([Output("waited.txt", str(params.get("tag", "")).encode(), kind="file")], meta=meta)


def render_hog(data: bytes, params: dict[str, Any]) -> Rendered:
    """Asks for far more memory than the cap, as a big numpy image would."""
    huge = np.ones((int(params.get("mb", 8192)), 1024, 1024), dtype=np.uint8)
    return Rendered([Output("never.bin", huge[:1].tobytes(), kind="file")])


def render_refuse(data: bytes, params: dict[str, Any]) -> Rendered:
    raise RenderError("that picture is too plain to colour in")


def render_bug(data: bytes, params: dict[str, Any]) -> Rendered:
    return {"not": "a Rendered"}[params["missing"]]  # type: ignore[no-any-return]


def render_crash(data: bytes, params: dict[str, Any]) -> Rendered:
    if params.get("how") == "exit":
        os._exit(3)
    ctypes.string_at(0)  # SIGSEGV
    raise AssertionError("unreachable")
