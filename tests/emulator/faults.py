"""Random faults on the emulator's REST API (for bench/chaos.py): Discord having a bad day.

Kinds, each drawn with probability `rate` per request, then uniformly among `kinds`:
- "500": an Internal Server Error before Discord did anything (discord.py retries these itself);
- "drop": the connection closes right after the request was read, before Discord did anything;
- "lost": Discord did it (the message is posted, the edit made) but the answer never arrives: the
  connection closes instead. The hardest case for a bot: it must not post the same thing again.

The gateway (websocket), the CDN and the start-up handshake (who am I, the gateway's address, command sync)
are never faulted: the brief is to shake the bot's work, not to keep it from logging in.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

API_PREFIX = "/api/v10"
KINDS = ("500", "drop", "lost")
# Start-up: GET /users/@me, GET /oauth2/applications/@me, GET /gateway/bot, PUT .../commands.
HANDSHAKE = ("/users/@me", "/oauth2/applications/@me", "/gateway/bot")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_kind(method: str, path: str) -> str:
    """A short name for what the request does, to count faults by: callback, followup, edit, message..."""
    if path.startswith("/interactions/"):
        return "callback"
    if path.startswith("/webhooks/"):
        if method == "POST":
            return "followup"
        return "edit" if method == "PATCH" else f"webhook {method}"
    if "/messages" in path:
        return {"POST": "message", "PATCH": "edit", "GET": "history"}.get(method, f"message {method}")
    return "other"


@dataclass
class RestFaults:
    rate: float
    rng: random.Random
    kinds: tuple[str, ...] = KINDS
    enabled: bool = True
    injected: Counter[str] = field(default_factory=Counter)  # "followup lost", "callback 500", ...

    def exempt(self, method: str, path: str) -> bool:
        return path in HANDSHAKE or (method == "PUT" and path.endswith("/commands"))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path.removeprefix(API_PREFIX)
        if (
            not self.enabled
            or not request.path.startswith(API_PREFIX + "/")
            or self.exempt(request.method, path)
            or self.rng.random() >= self.rate
        ):
            return await handler(request)
        kind = self.rng.choice(self.kinds)
        self.injected[f"{route_kind(request.method, path)} {kind}"] += 1
        if kind == "500":
            return web.Response(
                text='{"message": "500: Internal Server Error", "code": 0}',
                status=500,
                content_type="application/json",
            )
        if kind == "lost":
            response = await handler(request)
            _cut(request)
            return response
        await request.read()
        _cut(request)
        return web.Response(status=500)  # never reaches the client


def _cut(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
