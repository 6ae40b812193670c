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
from typing import NamedTuple, Protocol

from bench.first_response_worker import Burst, FirstResponseConfig, bot_options
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
    def cpu(self) -> CpuReading | None: ...
    def gc(self) -> tuple[list[int], list[float]]: ...
    async def profile_start(self) -> None: ...
    async def profile_stop(self) -> None: ...


class InProcessBot:
    """The bot in this process's event loop, with the emulator and the studio (the tests' way)."""

    mode = "in-process"

    def __init__(self, emulator: DiscordEmulator, studio: FakeStudio, data_dir: Path, slot_limit: int | None) -> None:
        settings = make_settings(
            emulator, data_dir, quota_server_allowance=1_000_000, local_studio_enabled=False, log_level="WARNING"
        )
        self._easel = Easel(emulator, settings, bot_options(studio.base_url, studio.token, slot_limit))
        self._burst = Burst(None)

    async def start(self) -> None:
        await self._easel.start()

    async def stop(self) -> None:
        await self._easel.stop()

    def cpu(self) -> CpuReading | None:
        return None  # shared with the bench: the bench's own reading covers it

    def gc(self) -> tuple[list[int], list[float]]:
        return self._burst.counts, self._burst.seconds  # the whole process's: bench and bot

    async def profile_start(self) -> None:
        self._burst.start()

    async def profile_stop(self) -> None:
        self._burst.stop()


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
        discord_connections: int | None = None,
        gc_freeze: bool = False,
        hold_steps: int | None = None,
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
            discord_connections=discord_connections,
            gc_freeze=gc_freeze,
            hold_steps=hold_steps,
        )
        self._log_path = data_dir / "bot.log"
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self._sampler_options = sampler
        self._sampler: asyncio.subprocess.Process | None = None
        self.gc_counts: list[int] = []  # the bot's garbage collections during the burst, by generation
        self.gc_seconds: list[float] = []

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
                if got.startswith("GC "):
                    numbers = got.split()[1:]
                    self.gc_counts = [int(n) for n in numbers[:3]]
                    self.gc_seconds = [float(n) for n in numbers[3:]]
                elif got == "EXITED":
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

    def cpu(self) -> CpuReading | None:
        return process_cpu(self._proc.pid) if self._proc is not None else None

    def gc(self) -> tuple[list[int], list[float]]:
        return self.gc_counts, self.gc_seconds

    async def profile_start(self) -> None:
        if self._proc is None:
            return
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
        self._proc.send_signal(signal.SIGUSR2)
        await self._expect("BURST-END", 60)
        if self._sampler is not None:
            self._sampler.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
            await asyncio.wait_for(self._sampler.wait(), 60)
            self._sampler = None


class CpuReading(NamedTuple):
    total_s: float  # user + system, all threads (ended ones too)
    loop_s: float  # the main thread's: the event loop's
    loop_wait_s: float  # the time the main thread was ready to run but waited for a core (the shared machine)


def process_cpu(pid: int) -> CpuReading:
    """From /proc: the process's stat, and its main thread's stat and schedstat (the task with its pid)."""
    return CpuReading(
        _stat_cpu(Path(f"/proc/{pid}/stat")),
        _stat_cpu(Path(f"/proc/{pid}/task/{pid}/stat")),
        int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1]) / 1e9,
    )


def _stat_cpu(path: Path) -> float:
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)
