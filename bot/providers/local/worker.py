"""The worker side of the local studio's pool: one process, one job at a time, started by `process.py`.

The parent talks to the worker over its stdin/stdout with length-prefixed frames: JSON headers (never
pickle: a worker decodes untrusted images, so what it sends back must not be able to run code in the bot)
and raw bytes for images. The parent sets OMP/OPENBLAS/MKL_NUM_THREADS=1 in the worker's environment, so
they hold before numpy is first imported.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib
import json
import os
import resource
import signal
import struct
import sys
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

FRAME = struct.Struct(">Q")
MB = 1024 * 1024
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PIPE_SIZE = 1024 * 1024  # the most an unprivileged process may ask for (/proc/sys/fs/pipe-max-size)

# The command that starts a worker: the parent's import path first, so `target` modules resolve the same way.
BOOT = (
    "import json, os, sys; "
    "sys.path[:0] = [p for p in json.loads(os.environ.pop('EASEL_WORKER_PATH', '[]')) if p not in sys.path]; "
    "from bot.providers.local.worker import main; main()"
)
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}

# OpenCV reports a failed allocation as cv2.error with one of these.
_CV_OOM = ("Insufficient memory", "Failed to allocate", "out of memory")


def read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    (size,) = FRAME.unpack(head)
    body = stream.read(size)
    return body if len(body) == size else None


def write_frames(stream: BinaryIO, *frames: bytes) -> None:
    for frame in frames:
        stream.write(FRAME.pack(len(frame)))
        stream.write(frame)
    stream.flush()


def vm_size() -> int:
    """Bytes of address space this process maps now (what RLIMIT_AS counts)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _reset_peak() -> None:
    # Linux: "5" resets VmHWM, so the peak read after a job is that job's (best effort: not everywhere allowed).
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_mb() -> float | None:
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def _is_out_of_memory(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MemoryError) or any(s in str(seen) for s in _CV_OOM):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _set_limits(memory_mb: int, cpu_s: float) -> None:
    # Memory: what the worker already maps plus the job's allowance. CPU: a backstop in case the bot died and
    # nobody is left to kill an endless job (the parent's wall-clock timeout is the real limit).
    resource.setrlimit(resource.RLIMIT_AS, (vm_size() + memory_mb * MB, resource.RLIM_INFINITY))
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    resource.setrlimit(resource.RLIMIT_CPU, (int(spent + cpu_s) + 1, resource.RLIM_INFINITY))


def _clear_limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _resolve(target: str, cache: dict[str, Callable[[bytes, dict[str, Any]], Any]]) -> Any:
    if target not in cache:
        module_name, _, function_name = target.partition(":")
        cache[target] = getattr(importlib.import_module(module_name), function_name)
    return cache[target]


def _run_one(header: dict[str, Any], data: bytes, cache: dict[str, Any]) -> list[bytes]:
    """Run one job; the frames of its answer (a JSON header, then each file's bytes)."""
    from bot.providers.local.common import Rendered, RenderError

    try:
        function = _resolve(str(header["target"]), cache)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a bug
        return [_error("missing", f"cannot load renderer {header['target']}: {exc!r}", traceback.format_exc())]
    try:
        _reset_peak()
        _set_limits(int(header["memory_mb"]), float(header["cpu_s"]))
        try:
            rendered = function(data, header["params"])
        finally:
            _clear_limits()
        stats = {"peak_mb": _peak_mb()}
        if not isinstance(rendered, Rendered):
            raise TypeError(f"{header['target']} returned {type(rendered).__name__}, not Rendered")
        files = [
            {"filename": o.filename, "kind": o.kind, "label": o.label, "send": o.send, "size": len(o.data)}
            for o in rendered.files
        ]
        answer = {"ok": True, "text": rendered.text, "meta": rendered.meta, "files": files, "stats": stats}
        head = json.dumps(answer).encode()
        return [head, *(o.data for o in rendered.files)]
    except RenderError as exc:
        return [_error("render", str(exc))]
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent, typed
        if _is_out_of_memory(exc):
            return [_error("memory", f"{type(exc).__name__}: {exc}"[:500])]
        return [_error("bug", f"{type(exc).__name__}: {exc}"[:2000], traceback.format_exc()[-8000:])]


def _error(kind: str, message: str, trace: str | None = None) -> bytes:
    return json.dumps({"ok": False, "error": kind, "message": message, "trace": trace}).encode()


def _die_with_parent() -> None:
    """If the bot's process dies (even by SIGKILL), its workers go too instead of rendering for nobody."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere: the worker exits at the next read from its closed stdin
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if str(os.getppid()) != os.environ.pop("EASEL_WORKER_PARENT", str(os.getppid())):
        os._exit(1)  # the parent died before prctl took effect


def main() -> None:
    """Serve jobs until stdin closes (the parent is gone or retired this worker)."""
    # Protocol on private descriptors; fds 0/1 become /dev/null and stderr, so a stray print() cannot
    # corrupt a frame.
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    for pipe in (proto_in, proto_out):
        # Linux: 1 MB pipes instead of 64 KB: a quarter of the loop wake-ups for a large result (asyncio reads
        # at most 256 KB at a time).
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the bot; it stops its workers itself
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not leave a core file of a member's photo

    # Warm up: the first job must not pay for these imports inside its time limit.
    import cv2
    import numpy  # noqa: F401
    import PIL.Image  # noqa: F401

    from bot.providers.local import common  # noqa: F401

    cv2.setNumThreads(1)
    write_frames(proto_out, json.dumps({"ready": True, "pid": os.getpid()}).encode())
    cache: dict[str, Any] = {}
    while True:
        head = read_frame(proto_in)
        data = read_frame(proto_in) if head is not None else None
        if head is None or data is None:
            return
        write_frames(proto_out, *_run_one(json.loads(head), data, cache))
