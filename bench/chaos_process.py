"""The bot's process, as bench/chaos.py drives it: start (and wait until it is ready), SIGKILL, or stop.

Its stdout carries `READY`, `UNEXPECTED <where>: <error>` and `STALL <seconds>` lines (see chaos_worker.py);
its stderr (the bot's log) goes to a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import IO

from bench.chaos_worker import WorkerConfig

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "bench" / "chaos_worker.py"
READY_TIMEOUT_S = 60.0  # a start on a busy 2-core machine (imports, login, resuming jobs)
STOP_TIMEOUT_S = 15.0


class BotProcess:
    """The bot's process: start, SIGKILL, or stop gracefully; its stdout is read for READY / UNEXPECTED."""

    def __init__(self, config: WorkerConfig, log: IO[bytes]) -> None:
        self._config = config
        self._log = log
        self.unexpected: list[str] = []  # errors that reached the bot's handler, over all its lives
        self.stall_s = 0.0  # the longest its event loop was blocked (reported over 1 s only)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            self._config.model_dump_json(),
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            cwd=str(ROOT),
        )
        ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(self._proc, ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), READY_TIMEOUT_S)
        except TimeoutError:
            await self.kill()
            raise RuntimeError("the bot process did not become ready (see its log)") from None

    async def _read(self, proc: asyncio.subprocess.Process, ready: asyncio.Future[None]) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line == "READY" and not ready.done():
                ready.set_result(None)
            elif line.startswith("UNEXPECTED "):
                self.unexpected.append(line.removeprefix("UNEXPECTED "))
            elif line.startswith("STALL "):
                self.stall_s = max(self.stall_s, float(line.split()[1]))
        if not ready.done():
            ready.set_exception(RuntimeError(f"the bot process exited ({proc.returncode}) before it was ready"))

    async def kill(self) -> None:
        """SIGKILL: the crash."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
        await self._reap()

    async def stop(self) -> None:
        """SIGTERM: Easel's own graceful stop (only at the very end, so the database file is tidy)."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self._proc.kill()
        await self._reap()

    async def _reap(self) -> None:
        if self._proc is not None:
            await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        self._proc, self._reader = None, None
