"""The bot's own HTTP server: health, metrics, provider callbacks, and signed links to results' originals."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot import result_links

if TYPE_CHECKING:
    from bot.app import EaselBot
    from bot.storage.database import Database

log = logging.getLogger(__name__)

CALLBACK_BODY_LIMIT = 64 * 1024
CallbackHandler = Callable[[str, str, str, bytes], Awaitable[tuple[int, dict[str, object]]]]


def _json(status: int, body: dict[str, object]) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


class WebServer:
    def __init__(self, *, host: str, port: int, db: Database) -> None:
        self._host = host
        self._port = port
        self._db = db
        self.bot: EaselBot | None = None
        self.callback_handler: CallbackHandler | None = None
        self._runner: web.AppRunner | None = None
        self._link_key: bytes | None = None  # signs links to results' originals (bot/result_links.py)
        self.port = port

    def app(self) -> web.Application:
        app = web.Application(client_max_size=CALLBACK_BODY_LIMIT)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/callbacks/{provider}/{job}/{secret}", self._callback)
        app.router.add_get("/results/{job}/{position}", self._result_file)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("Web server listening on http://%s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        problems: list[str] = []
        try:
            await asyncio.wait_for(self._db.ping(), timeout=2.0)
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
            problems.append(f"database unreachable: {type(exc).__name__}")
        bot = self.bot
        if bot is None or bot.is_closed():
            problems.append("bot not running")
        elif not bot.is_ready():
            problems.append("gateway not connected yet")
        else:
            closed = [sid for sid, shard in bot.shards.items() if shard.is_closed()]
            if closed:
                problems.append(f"gateway shards disconnected: {closed}")
        if problems:
            return _json(503, {"status": "unhealthy", "problems": problems})
        return _json(200, {"status": "ok"})

    async def _metrics(self, _request: web.Request) -> web.Response:
        if self.bot is None:
            return web.Response(status=503, text="bot not running\n")
        return web.Response(
            body=self.bot.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        )

    async def _callback(self, request: web.Request) -> web.Response:
        if self.callback_handler is None:
            return _json(404, {"error": "callbacks are not enabled"})
        if request.content_length is not None and request.content_length > CALLBACK_BODY_LIMIT:
            return _json(413, {"error": "body too large"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _json(413, {"error": "body too large"})
        m = request.match_info
        status, answer = await self.callback_handler(m["provider"], m["job"], m["secret"], body)
        return _json(status, answer)

    async def _result_file(self, request: web.Request) -> web.Response:
        """A result's original file, for a link signed by delivery: only before it expires and only while the
        job's files are kept. Every refusal looks the same to the caller (nothing to probe)."""
        bot = self.bot
        m = request.match_info
        try:
            position, expires = int(m["position"]), int(request.query.get("e", ""))
        except ValueError:
            return web.Response(status=404, text="not found\n")
        signature = request.query.get("s", "")
        if bot is None:
            return web.Response(status=503, text="bot not running\n")
        if self._link_key is None:
            secret = bot.settings.result_link_secret
            configured = secret.get_secret_value() if secret is not None else None
            self._link_key = await result_links.signing_key(self._db, configured)
        key = self._link_key
        if not result_links.valid(key, m["job"], position, expires, signature, time.time()):
            expired = result_links.valid(key, m["job"], position, expires, signature, float("-inf"))
            return web.Response(status=410 if expired else 404, text="link expired\n" if expired else "not found\n")
        record = next((r for r in await bot.jobs.store.results(m["job"]) if r.position == position), None)
        path = bot.jobs.files.resolve(record.path) if record is not None else None
        if record is None or path is None or not path.is_file():
            return web.Response(status=404, text="this result is no longer kept\n")
        data = await asyncio.to_thread(path.read_bytes)
        return web.Response(
            body=data,
            headers={
                "Content-Type": record.content_type,
                "Content-Disposition": f'inline; filename="{record.filename}"',
                "Cache-Control": "private, max-age=3600",
                "X-Content-Type-Options": "nosniff",
            },
        )
