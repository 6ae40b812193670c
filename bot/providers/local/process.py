"""The pool's handle on one worker process: start it, exchange frames over its pipes, kill and reap it.

Frames are an 8-byte length then the bytes (see worker.py). Everything a worker sends is checked: it decodes
untrusted images, so a confused or compromised worker must not be able to do more than fail its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from bot.providers.local.worker import BOOT, FRAME, THREAD_ENV

STARTUP_TIMEOUT_S = 90.0  # importing numpy/OpenCV on a busy machine
MAX_ANSWER_BYTES = 512 * 1024 * 1024  # a worker claiming more is broken (results are at most ~50 MB)
MAX_HEADER_BYTES = 1024 * 1024
READ_BUFFER = 2 * 1024 * 1024  # the stream pauses the pipe at twice this
CHUNK = 1024 * 1024  # large frames cross the pipe in slices of this size, one loop callback each
# The only environment a worker gets: it decodes untrusted files, so the bot's tokens and keys stay out of it.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "VIRTUAL_ENV", "LD_LIBRARY_PATH")


class Lost(Exception):
    """The worker died or broke the protocol mid-exchange; the message says which, if known."""


class FileHead(BaseModel):
    filename: str
    kind: Literal["image", "file"] = "image"
    label: str | None = None
    send: bool = True
    size: int


class Answer(BaseModel):
    """A worker's answer to one job."""

    ok: bool
    error: Literal["render", "memory", "bug", "missing"] | None = None
    message: str | None = None
    trace: str | None = None
    text: str | None = None
    meta: dict[str, Any] = {}
    files: list[FileHead] = []
    stats: dict[str, float | None] = {}  # the worker's own figures, e.g. peak_mb


@dataclass(eq=False)
class WorkerProcess:
    proc: asyncio.subprocess.Process
    jobs: int = 0
    live: set[WorkerProcess] | None = None  # the pool's set of unreaped processes, left once reaped
    retire: asyncio.TimerHandle | None = None  # while idle

    @classmethod
    async def spawn(cls, live: set[WorkerProcess]) -> WorkerProcess:
        """Start a worker (a fresh interpreter) and add it to `live`; `handshake()` waits until it is ready."""
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("PYTHON")}
        env.update(THREAD_ENV, EASEL_WORKER_PATH=json.dumps(sys.path), EASEL_WORKER_PARENT=str(os.getpid()))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            BOOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            limit=READ_BUFFER,
        )
        worker = cls(proc, live=live)
        live.add(worker)
        return worker

    async def handshake(self) -> None:
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_S):
                hello = json.loads(await self.receive(4096))
        except (TimeoutError, ValueError) as exc:
            raise Lost(f"the worker did not start: {exc!r}") from exc
        if not isinstance(hello, dict) or not hello.get("ready"):
            raise Lost("the worker did not say it was ready")

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def send(self, *frames: bytes) -> None:
        # In slices: handing a 40 MB input to the transport at once copies it twice in one loop callback.
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            for frame in frames:
                stdin.write(FRAME.pack(len(frame)))
                view = memoryview(frame)
                for start in range(0, len(view), CHUNK):
                    stdin.write(view[start : start + CHUNK])
                    await stdin.drain()
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise Lost from exc

    async def receive(self, max_size: int = MAX_ANSWER_BYTES) -> bytes:
        # In slices too: one readexactly() of 50 MB grows (and re-copies) the stream's buffer as it fills.
        stdout = self.proc.stdout
        assert stdout is not None
        try:
            (size,) = FRAME.unpack(await stdout.readexactly(FRAME.size))
            if size > max_size:
                raise Lost(f"the worker announced a {size}-byte frame")
            if size <= CHUNK:
                return await stdout.readexactly(size)
            parts = []
            for start in range(0, size, CHUNK):
                parts.append(await stdout.readexactly(min(CHUNK, size - start)))
            # Copying 50 MB into a fresh object costs ~100 ms of page faults: off the loop (join drops the GIL).
            return await asyncio.to_thread(b"".join, parts)
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            raise Lost from exc

    async def answer(self) -> tuple[Answer, list[bytes]]:
        """The answer to the job just sent: its header, then each file's bytes."""
        try:
            answer = Answer.model_validate_json(await self.receive(MAX_HEADER_BYTES))
        except ValidationError as exc:
            raise Lost("the worker sent a malformed answer") from exc
        files = []
        budget = MAX_ANSWER_BYTES
        for head in answer.files:
            body = await self.receive(budget)
            if len(body) != head.size:
                raise Lost("a file's size does not match its header")
            budget -= len(body)
            files.append(body)
        return answer, files

    async def kill(self) -> int:
        """SIGKILL (idempotent) and reap: no zombie is left behind. Returns the exit status."""
        if self.proc.returncode is None:
            # Not Process.kill(): Popen.send_signal() polls first, which can reap the process under asyncio's
            # child watcher; the watcher then reports exit code 255 instead of the real status.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        code = await self.proc.wait()
        if self.live is not None:
            self.live.discard(self)
        return code
