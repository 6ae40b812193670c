"""The test-side handle of one interaction: what the bot answered, its @original and followups."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from .messages import EPHEMERAL, LOADING, MessageStore
from .models import Member
from .signals import Signal

TOKEN_LIFETIME = 15 * 60
APPLICATION_COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
DEFERRED_TYPES = (5, 6)

MessagePredicate = Callable[[dict[str, Any]], bool]


class Interaction:
    def __init__(
        self,
        *,
        id: int,
        token: str,
        type: int,
        user: Member,
        channel_id: int,
        guild_id: int | None,
        attachment_size_limit: int,
        created_at: dt.datetime,
        created_clock: float,
        store: MessageStore,
        watchers: dict[int, list[Interaction]],
        component_message_id: int | None = None,
    ) -> None:
        self.id = id
        self.token = token
        self.type = type
        self.user = user
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.attachment_size_limit = attachment_size_limit
        self.created_at = created_at
        self.created_clock = created_clock  # emulator clock, for the 15 min token lifetime
        self.component_message_id = component_message_id
        self.payload: dict[str, Any] = {}  # the INTERACTION_CREATE data as dispatched
        self.dispatched_at: float | None = None  # real monotonic time, for the 3 s deadline
        self.callback: dict[str, Any] | None = None
        self.callback_at: float | None = None
        self.callback_errors: list[dict[str, Any]] = []  # error bodies the bot got for this interaction
        self.original_id: int | None = None
        self.followup_ids: list[int] = []
        self._store = store
        self._watchers = watchers
        self._signal = Signal()
        loop = asyncio.get_running_loop()
        self._acknowledged: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._sent: asyncio.Future[float] = loop.create_future()

    def __repr__(self) -> str:
        return f"<emulator Interaction id={self.id} type={self.type} callback={self.callback_type}>"

    # --- what the bot answered ------------------------------------------------------------------

    async def response(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109 - public contract
        """The initial callback body; raises TimeoutError (naming refused callbacks) if none was accepted."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._acknowledged), timeout)
        except TimeoutError:
            refused = f"; refused callbacks: {self.callback_errors}" if self.callback_errors else ""
            raise TimeoutError(f"emulator: no initial response to {self!r} within {timeout}s{refused}") from None

    @property
    def callback_type(self) -> int | None:
        return None if self.callback is None else int(self.callback["type"])

    @property
    def deferred(self) -> bool:
        return self.callback_type in DEFERRED_TYPES

    @property
    def ephemeral(self) -> bool:
        flags = int(((self.callback or {}).get("data") or {}).get("flags") or 0)
        return bool(flags & EPHEMERAL)

    @property
    def response_latency(self) -> float | None:
        if self.callback_at is None or self.dispatched_at is None:
            return None
        return self.callback_at - self.dispatched_at

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        """Autocomplete answer (callback type 8)."""
        if self.callback_type != 8:
            return None
        return list((self.callback or {}).get("data", {}).get("choices", []))

    @property
    def original(self) -> dict[str, Any] | None:
        """Current @original, or None while there is none or it is still the "thinking..." placeholder."""
        if self.original_id is None:
            return None
        message = self._store.by_id.get(self.original_id)
        if message is None or message["flags"] & LOADING:
            return None
        return message

    @property
    def followups(self) -> list[dict[str, Any]]:
        return [self._store.by_id[i] for i in self.followup_ids if i in self._store.by_id]

    async def wait_original(
        self,
        predicate: MessagePredicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - public contract
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            message = self.original
            return message if message is not None and (predicate is None or predicate(message)) else None

        return await self._signal.wait_until(check, within=timeout, what=f"@original of {self!r}")

    async def wait_followup(
        self,
        predicate: MessagePredicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - public contract
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            return next((m for m in self.followups if predicate is None or predicate(m)), None)

        return await self._signal.wait_until(check, within=timeout, what=f"a followup of {self!r}")

    # --- emulator side --------------------------------------------------------------------------

    def mark_dispatched(self, at: float) -> None:
        self.dispatched_at = at
        if not self._sent.done():
            self._sent.set_result(at)

    async def wait_dispatched(self, within: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._sent), within)
        except TimeoutError:
            raise TimeoutError(f"emulator: {self!r} was not written to the gateway within {within}s") from None

    def token_expired(self, now: float) -> bool:
        return now - self.created_clock > TOKEN_LIFETIME

    @property
    def acknowledged(self) -> bool:
        return self.callback is not None

    def acknowledge(self, body: dict[str, Any], at: float) -> None:
        self.callback = body
        self.callback_at = at
        self._acknowledged.set_result(body)
        self.changed()

    def link_original(self, message_id: int) -> None:
        self.original_id = message_id
        self._watch(message_id)

    def link_followup(self, message_id: int) -> None:
        self.followup_ids.append(message_id)
        self._watch(message_id)
        self.changed()

    def _watch(self, message_id: int) -> None:
        watching = self._watchers.setdefault(message_id, [])
        if self not in watching:
            watching.append(self)

    def changed(self) -> None:
        self._signal.notify()
