"""The bot under bench/first_response.py's burst: in this process (InProcessBot) or its own (WorkerBot).

WorkerBot starts bench/first_response_worker.py, waits for its `READY`, reads its CPU time (all threads, and
the event loop's thread alone) from /proc, and asks it by signal to profile the burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.first_response_worker import FirstResponseConfig, bot_options
from tests.emulator import DiscordEmulator
from tests.fakes.studio import FakeStudio
from tests.harness import Easel, free_port, make_settings

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "bench" / "first_response_worker.py"
READY_TIMEOUT_S = 60.0  # a start on a busy 2-core machine
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class SamplerOptions:
    """py-spy (installed outside the repo: a benchmark-only tool) sampling the bot process during the burst."""

    executable: Path
    output: Path
    rate: int = 250


class BurstBot(Protocol):
    mode: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def cpu(self) -> tuple[float, float] | None: ...
    async def profile_start(self) -> None: ...
    async def profile_stop(self) -> None: ...


class InProcessBot:
    """The bot in this process's event loop, with the emulator and the studio (the tests' way)."""

    mode = "in-process"

    def __init__(self, emulator: DiscordEmulator, studio: FakeStudio, data_dir: Path, slot_limit: int | None) -> None:
        settings = make_settings(emulator, data_dir, quota_server_allowance=1_000_000, log_level="WARNING")
        self._easel = Easel(emulator, settings, bot_options(studio.base_url, studio.token, slot_limit))

    async def start(self) -> None:
        await self._easel.start()

    async def stop(self) -> None:
        await self._easel.stop()

    def cpu(self) -> tuple[float, float] | None:
        return None  # shared with the bench: time.process_time() covers it

    async def profile_start(self) -> None:
        pass

    async def profile_stop(self) -> None:
        pass


class WorkerBot:
    """The bot in its own process, as deployed: the real Runtime on its own core."""

    mode = "bot-process"

    def __init__(
        self,
        emulator: DiscordEmulator,
        studio: FakeStudio,
        data_dir: Path,
        slot_limit: int | None,
        profile: Path | None = None,
        sampler: SamplerOptions | None = None,
    ) -> None:
        self._config = FirstResponseConfig(
            bot_token=emulator.bot_token,
            api_base=emulator.api_base,
            gateway_url=emulator.gateway_url,
            data_dir=data_dir,
            http_port=free_port(),
            studio_url=studio.base_url,
            studio_token=studio.token,
            slot_limit=slot_limit,
            profile_path=profile,
        )
        self._log_path = data_dir / "bot.log"
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self._sampler_options = sampler
        self._sampler: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self._log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                self._config.model_dump_json(),
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=str(ROOT),
            )
        self._reader = asyncio.create_task(self._read(self._proc))
        await self._expect("READY", READY_TIMEOUT_S)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            await self._lines.put(raw.decode(errors="replace").rstrip())
        await self._lines.put("EXITED")

    async def _expect(self, line: str, within: float) -> None:
        async def until() -> None:
            while (got := await self._lines.get()) != line:
                if got == "EXITED":
                    raise RuntimeError(f"the bot process exited before {line} (see {self._log_path})")

        try:
            await asyncio.wait_for(until(), within)
        except TimeoutError:
            raise RuntimeError(f"the bot process did not print {line} within {within} s") from None

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 15)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)

    def cpu(self) -> tuple[float, float] | None:
        """(all threads, the event loop's thread) CPU seconds so far, from /proc (user + system)."""
        if self._proc is None:
            return None
        pid = self._proc.pid
        # The process's own stat counts threads that have ended too; the task with its pid is the loop's thread.
        return _stat_cpu(Path(f"/proc/{pid}/stat")), _stat_cpu(Path(f"/proc/{pid}/task/{pid}/stat"))

    async def profile_start(self) -> None:
        if self._proc is None:
            return
        if self._config.profile_path is not None:
            self._proc.send_signal(signal.SIGUSR1)
            await asyncio.sleep(0.05)  # the handler runs on the bot's loop before the burst begins
        if self._sampler_options is not None:
            opts = self._sampler_options
            self._sampler = await asyncio.create_subprocess_exec(
                str(opts.executable),
                "record",
                "--pid",
                str(self._proc.pid),
                "--rate",
                str(opts.rate),
                "--nonblocking",  # never pauses the bot: its latency is what is measured
                "--threads",
                "--full-filenames",
                "--format",
                "raw",
                "--output",
                str(opts.output),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(0.5)  # attached and sampling before the burst begins

    async def profile_stop(self) -> None:
        if self._proc is None:
            return
        if self._config.profile_path is not None:
            self._proc.send_signal(signal.SIGUSR2)
            await self._expect("PROFILED", 60)
        if self._sampler is not None:
            self._sampler.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
            await asyncio.wait_for(self._sampler.wait(), 60)
            self._sampler = None


def _stat_cpu(path: Path) -> float:
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)
