from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.emulator import DiscordEmulator
from tests.harness import Easel, make_settings

pytest_plugins = ["tests.emulator.fixtures"]

EaselFactory = Callable[..., Awaitable[Easel]]


@pytest.fixture
async def easel_factory(emulator: DiscordEmulator, tmp_path: Path) -> AsyncIterator[EaselFactory]:
    """Start Easel against the emulator: `await easel_factory(adapters=..., mimipanda_api_token=...)`.

    Keyword arguments that are bot options (adapters, ledger, extra_extensions) go to the bot; the rest are
    settings. An unexpected error anywhere in a command, button or job step fails the test."""
    started: list[Easel] = []

    async def make(**kwargs: Any) -> Easel:
        bot_options = {
            k: kwargs.pop(k)
            for k in ("adapters", "adapter_factory", "ledger", "extra_extensions", "provider_limits_override")
            if k in kwargs
        }
        settings = make_settings(emulator, tmp_path / "data", **kwargs)
        easel = Easel(emulator, settings, bot_options)
        started.append(easel)
        return await easel.start()

    yield make
    errors: list[tuple[str, BaseException]] = []
    for easel in started:
        errors.extend(easel.unexpected() if not easel.expect_errors else [])
        await easel.stop()
    if errors:
        pytest.fail(
            "unexpected errors reached the bot's error handler: "
            + "; ".join(f"{where}: {exc!r}" for where, exc in errors)
        )


@pytest.fixture
async def easel(easel_factory: EaselFactory) -> Easel:
    return await easel_factory()
