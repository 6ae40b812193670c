"""Pytest fixtures for the Discord emulator (loaded for every test through tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .emulator import DiscordEmulator


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[DiscordEmulator]:
    emu = DiscordEmulator(bot_token="emu-token")
    await emu.start()
    try:
        yield emu
    finally:
        await emu.stop()
