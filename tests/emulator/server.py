"""The aiohttp app: API under /api/v10, the gateway websocket, the CDN; errors rendered as Discord does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .bodies import BODY, Body, json_response, read_body
from .errors import ApiError, no_route, unauthorized
from .models import RecordedError, RecordedRequest
from .rest_core import CoreRoutes
from .rest_interactions import InteractionRoutes
from .rest_messages import MessageRoutes

if TYPE_CHECKING:
    from .emulator import DiscordEmulator

API_PREFIX = "/api/v10"
GATEWAY_PATH = "/"
# Interaction callbacks and webhooks are authorised by their token, not the bot token.
TOKEN_AUTHORISED = (f"{API_PREFIX}/interactions/", f"{API_PREFIX}/webhooks/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EmulatorServer:
    def __init__(self, emu: DiscordEmulator) -> None:
        self._emu = emu
        self._runner: web.AppRunner | None = None
        self.port = 0

    def build_app(self) -> web.Application:
        emu = self._emu
        # emu.middlewares run first (e.g. tests/emulator/faults.py), then the emulator's own.
        app = web.Application(middlewares=[*emu.middlewares, self._middleware], client_max_size=1024**3)
        for group in (CoreRoutes(emu), MessageRoutes(emu), InteractionRoutes(emu)):
            for route in group.routes():
                app.router.add_route(route.method, API_PREFIX + route.path, route.handler)
        app.router.add_get(GATEWAY_PATH, emu.gateway.handle)
        app.router.add_get("/attachments/{channel_id}/{attachment_id:\\d+}/{filename}", emu.cdn.serve)
        app.router.add_get("/media/attachments/{channel_id}/{attachment_id:\\d+}/{filename}", emu.cdn.serve)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        emu = self._emu
        try:
            body = await read_body(request) if request.method in ("POST", "PUT", "PATCH") else Body()
            request[BODY] = body
            emu.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path[len(API_PREFIX) :],
                    query=dict(request.query),
                    json=body.json,
                    files=[(f.filename, f.data) for f in body.files],
                    at=emu.clock.monotonic(),
                )
            )
            if not request.path.startswith(TOKEN_AUTHORISED) and (
                request.headers.get("Authorization") != f"Bot {emu.bot_token}"
            ):
                raise unauthorized()
            try:
                return await handler(request)
            except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
                raise no_route(request.method, request.path[len(API_PREFIX) :]) from None
        except ApiError as error:
            emu.api_errors.append(
                RecordedError(request.method, request.path[len(API_PREFIX) :], error.status, error.body())
            )
            return json_response(error.body(), status=error.status)
