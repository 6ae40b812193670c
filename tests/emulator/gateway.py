"""The gateway websocket: HELLO/IDENTIFY/READY, heartbeats, RESUME, member chunks, and ordered dispatches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .guild import Guild

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 8, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41_250
GUILDS, GUILD_MEMBERS, GUILD_PRESENCES = 1 << 0, 1 << 1, 1 << 8
GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 9, 1 << 12, 1 << 15
PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
REPLAY_LIMIT = 2000


OnSent = Callable[[float], None]


@dataclass(eq=False)
class Connection:
    """One websocket; a writer task drains `outbox` so frames leave in the order they were queued."""

    ws: web.WebSocketResponse
    outbox: asyncio.Queue[tuple[dict[str, Any], OnSent | None]] = field(default_factory=asyncio.Queue)

    def send(self, frame: dict[str, Any], on_sent: OnSent | None = None) -> None:
        self.outbox.put_nowait((frame, on_sent))

    async def write_forever(self) -> None:
        while True:
            frame, on_sent = await self.outbox.get()
            if on_sent is not None:
                # Stamped before writing: once written, the bot may answer before this task resumes.
                on_sent(time.monotonic())
            try:
                await self.ws.send_str(json.dumps(frame))
            except (ConnectionError, RuntimeError) as exc:
                log.warning("emulator gateway: dropped %s frame: %s", frame.get("t"), exc)


@dataclass(eq=False)
class Session:
    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    seq: int = 0
    connection: Connection | None = None
    # Recent dispatches, replayed after the client's last seq on RESUME like Discord does.
    recent: deque[tuple[dict[str, Any], OnSent | None]] = field(default_factory=lambda: deque(maxlen=REPLAY_LIMIT))

    def dispatch(self, event: str, data: Any, on_sent: OnSent | None = None) -> None:
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.recent.append((frame, on_sent))
        if self.connection is not None:
            self.connection.send(frame, on_sent)

    def can_replay_after(self, seq: int) -> bool:
        return not self.recent or self.recent[0][0]["s"] <= seq + 1

    def replay_after(self, seq: int) -> None:
        assert self.connection is not None
        for frame, on_sent in self.recent:
            if frame["s"] > seq:
                self.connection.send(frame, on_sent)


class Gateway:
    def __init__(self, *, token: str, bot_user: dict[str, Any], application_id: int, guild: Guild) -> None:
        self._token = token
        self._bot_user = bot_user
        self._application_id = application_id
        self._guild = guild
        self.sessions: dict[str, Session] = {}
        self.url = ""  # set once the server has its port
        self.shard_count = 1  # what GET /gateway/bot recommends
        self.allow_privileged_intents = True
        self._connections: set[web.WebSocketResponse] = set()

    # --- dispatching ----------------------------------------------------------------------------

    def session_for(self, guild_id: int | None) -> Session | None:
        """The session of the shard that owns `guild_id` (DMs go to shard 0), connected or awaiting RESUME."""
        for session in self.sessions.values():
            shard = 0 if guild_id is None else (guild_id >> 22) % session.shard_count
            if session.shard_id == shard:
                return session
        return None

    def dispatch(self, event: str, data: Any, *, guild_id: int | None, intent: int = 0) -> None:
        """Send to the shard owning `guild_id` if the bot asked for `intent` (0 = always delivered)."""
        session = self.session_for(guild_id)
        if session is not None and (intent == 0 or session.intents & intent):
            session.dispatch(event, data)

    # --- websocket ------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, compress=False, autoping=True)
        await ws.prepare(request)
        self._connections.add(ws)
        connection = Connection(ws)
        writer = asyncio.create_task(connection.write_forever(), name="emulator-gateway-writer")
        session: Session | None = None
        try:
            connection.send({"op": HELLO, "s": None, "t": None, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                session = await self._on_frame(connection, session, frame) or session
        finally:
            self._connections.discard(ws)
            if session is not None and session.connection is connection:
                session.connection = None
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _on_frame(self, connection: Connection, session: Session | None, frame: dict[str, Any]) -> Session | None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            connection.send({"op": HEARTBEAT_ACK, "s": None, "t": None, "d": None})
        elif op == IDENTIFY:
            return await self._identify(connection, data or {})
        elif op == RESUME:
            return await self._resume(connection, data or {})
        elif op == REQUEST_MEMBERS and session is not None:
            self._send_chunk(session, data or {})
        return None

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> Session | None:
        if data.get("token") != self._token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED and not self.allow_privileged_intents:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        shard = data.get("shard")
        shard_id, shard_count = (int(shard[0]), int(shard[1])) if shard else (0, 1)
        session = Session(secrets.token_hex(16), shard_id, shard_count, intents, connection=connection)
        # A fresh IDENTIFY replaces the shard's previous session, as on Discord.
        self.sessions = {k: s for k, s in self.sessions.items() if s.shard_id != shard_id}
        self.sessions[session.session_id] = session
        in_shard = (self._guild.id >> 22) % shard_count == shard_id
        guilds = [self._guild] if in_shard and self._guild.bot_present else []
        ready: dict[str, Any] = {
            "v": 10,
            "user": self._bot_user,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "application": {"id": str(self._application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": ["emulator"],
            "user_settings": {},
            "guild_join_requests": [],
            "_trace": ["emulator"],
        }
        if shard:
            ready["shard"] = [shard_id, shard_count]
        session.dispatch("READY", ready)
        for guild in guilds:
            if not guild.outage:
                session.dispatch("GUILD_CREATE", guild.create_payload(with_members=bool(intents & GUILD_MEMBERS)))
        return session

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(str(data.get("session_id")))
        seq = int(data.get("seq") or 0)
        if session is None or data.get("token") != self._token or not session.can_replay_after(seq):
            connection.send({"op": INVALID_SESSION, "s": None, "t": None, "d": False})
            return None
        if session.connection is not None:
            await session.connection.ws.close(code=4000, message=b"emulator: session resumed elsewhere")
        session.connection = connection
        session.replay_after(seq)
        session.dispatch("RESUMED", {"_trace": ["emulator"]})
        return session

    def _send_chunk(self, session: Session, data: dict[str, Any]) -> None:
        if not session.intents & GUILD_MEMBERS:
            return  # Discord ignores chunk requests without the members intent
        members = list(self._guild.members.values())
        if data.get("user_ids"):
            wanted = {int(u) for u in data["user_ids"]}
            members = [m for m in members if m.id in wanted]
        elif data.get("query"):
            members = [m for m in members if m.name.lower().startswith(str(data["query"]).lower())]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(self._guild.id),
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if "nonce" in data:
            chunk["nonce"] = data["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every websocket (4000 = resumable), as Discord does now and then."""
        for session in self.sessions.values():
            session.connection = None  # from now on dispatches wait in `recent` for the RESUME
        for ws in list(self._connections):
            await ws.close(code=code, message=b"emulator: connection dropped")

    async def close(self) -> None:
        for ws in list(self._connections):
            await ws.close(code=1001, message=b"emulator: shutting down")
