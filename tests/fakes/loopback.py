"""The life cycle every studio fake shares: its aiohttp app served on 127.0.0.1, stopped quickly."""

from __future__ import annotations

import asyncio
from typing import Self

from aiohttp import web


class LoopbackServer:
    """Subclasses build their app in `start()` and hand it to `serve()`. Slow-fault handlers wait on
    `_stopping`, so a test's teardown never waits for them."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._port: int | None = None

    async def serve(self, app: web.Application) -> None:
        self._stopping = asyncio.Event()
        # A short shutdown timeout: a slow-fault handler must not hold up the test's teardown.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def start(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def origin(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"
