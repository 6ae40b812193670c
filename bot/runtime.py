"""The long-lived resources of one Easel process, opened and closed in order.

Order of opening: database -> HTTP client -> web server -> bot. Closing runs the other way round, so
nothing is torn down while something that uses it still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import httpx
import yarl

from bot import limits
from bot.app import EaselBot
from bot.http_client import build_http_client
from bot.providers.registry import build_adapters
from bot.settings import Settings
from bot.storage.database import Database
from bot.web import WebServer

log = logging.getLogger(__name__)


def point_discord_at(settings: Settings) -> None:
    """Aim discord.py's REST and gateway at the configured endpoints (a proxy, or the test emulator)."""
    discord.http.Route.BASE = settings.api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class Runtime:
    def __init__(self, settings: Settings, **bot_options: Any) -> None:
        self.settings = settings
        self._bot_options = bot_options
        self.db: Database
        self.http: httpx.AsyncClient
        self.web: WebServer
        self.bot: EaselBot
        self._bot_task: asyncio.Task[None] | None = None
        self._opened: list[str] = []

    async def open(self) -> Runtime:
        point_discord_at(self.settings)
        try:
            self.db = await Database.open(self.settings.database_path)
            self._opened.append("db")
            self.http = build_http_client()
            self._opened.append("http")
            self.web = WebServer(host=self.settings.http_host, port=self.settings.http_port, db=self.db)
            await self.web.start()
            self._opened.append("web")
            factory = self._bot_options.pop("adapter_factory", build_adapters)
            self._bot_options.setdefault("adapters", factory(self.settings, self.http))
            # Keep-alive connections to Discord, at most this many: in a burst, discord.py would otherwise open a
            # new (TLS) connection for every request in flight.
            self._bot_options.setdefault("connector", aiohttp.TCPConnector(limit=limits.DISCORD_HTTP_CONNECTIONS))
            self.bot = EaselBot(settings=self.settings, db=self.db, http_client=self.http, **self._bot_options)
            self.web.bot = self.bot
            self.web.callback_handler = self.bot.jobs.handle_callback
            self._opened.append("bot")
        except BaseException:
            await self.close()
            raise
        return self

    def start(self) -> asyncio.Task[None]:
        """Log in and connect in the background; returns the task that runs the bot."""
        token = self.settings.discord_token
        if token is None:
            raise RuntimeError("DISCORD_TOKEN is not set")
        self._bot_task = asyncio.create_task(self.bot.start(token.get_secret_value()), name="easel-bot")
        return self._bot_task

    async def close(self) -> None:
        if "bot" in self._opened:
            await self.bot.close()
            if self._bot_task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._bot_task
            # Adapters that own processes (Easel's own studio's workers) stop after the engine did.
            for adapter in self.bot.jobs.adapters.values():
                closer = getattr(adapter, "close", None)
                if closer is not None:
                    with contextlib.suppress(Exception):
                        await closer()
        if "web" in self._opened:
            await self.web.stop()
        if "http" in self._opened:
            await self.http.aclose()
        if "db" in self._opened:
            await self.db.close()
        self._opened.clear()

    async def run_until_stopped(self) -> None:
        """Run until SIGTERM/SIGINT or the bot stops by itself; then close everything in order."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(sig, stop.set)
        task = self.start()
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if task in done and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            if stopper in done:
                log.info("Shutting down")
        finally:
            stopper.cancel()
            await self.close()
