"""One request policy for every adapter: timeouts, classified errors, and retries where they are safe.

- Safe requests (status GETs, downloads) are retried in-call a couple of times on transient errors and 429,
  with exponential backoff, jitter, and `Retry-After` honoured when short. Longer waits go back to the
  engine, which reschedules the job (persisted) instead of holding a task asleep.
- Unsafe requests (creates that may bill) are retried in-call only when the provider provably never saw
  them: a connection that could not be opened, or a 429.
- Errors never carry the API key: messages are built from the status and the provider's own error text.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from bot.providers.base import (
    AuthenticationFailed,
    ContentPolicy,
    InvalidInput,
    NotFoundAtProvider,
    OutOfCredits,
    ProviderError,
    RateLimited,
    Transient,
)

log = logging.getLogger(__name__)

MAX_IN_CALL_RETRIES = 2
MAX_IN_CALL_WAIT_S = 5.0  # a longer Retry-After goes back to the engine
BACKOFF_BASE_S = 0.5

Classifier = Callable[[int, Any, str], ProviderError | None]


MAX_RETRY_AFTER_S = 3600.0  # a provider asking for longer is not believed: the job's deadline decides


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date); None when absent or unreadable.
    Capped: a huge value must not park a job for days (the engine also stops at the job's deadline)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed.tzinfo is None:
            return None
        seconds = parsed.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def backoff(attempt: int, *, base: float = BACKOFF_BASE_S, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter (attempt 0 -> up to base)."""
    return float(random.uniform(0, min(cap, base * (2**attempt))))


def default_classify(status: int, body: Any, message: str) -> ProviderError | None:
    """The shared mapping of HTTP statuses to error classes; adapters refine it with their own codes."""
    if status in (401, 403, 406):
        return AuthenticationFailed(message, status=status)
    if status in (402, 424):
        return OutOfCredits(message, status=status)
    if status == 404:
        return NotFoundAtProvider(message, status=status)
    if status in (400, 409, 413, 415, 422):
        return InvalidInput(message, status=status)
    if status >= 500:
        return Transient(message, status=status)
    return None


def error_text(body: Any) -> str:
    """The provider's own message from an error body, whatever its shape."""
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "failedMessage"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                return error_text(value)
    if isinstance(body, str):
        return body.strip()[:300]
    return ""


class ProviderHTTP:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        provider: str,
        base_url: str,
        auth_headers: Mapping[str, str],
        classify: Classifier | None = None,
        content_policy_markers: tuple[str, ...] = (),
        timeout: httpx.Timeout | None = None,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._auth = dict(auth_headers)
        self._classify = classify
        self._policy_markers = tuple(m.lower() for m in content_policy_markers)
        self._timeout = timeout
        self._on_request = on_request

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        safe: bool,
        auth: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send, classify, retry within this call where safe. Returns a 2xx response or raises."""
        headers = {**(self._auth if auth else {}), **kwargs.pop("headers", {})}
        if self._timeout is not None:
            kwargs.setdefault("timeout", self._timeout)
        attempt = 0
        while True:
            try:
                response = await self._client.request(method, self.url(path), headers=headers, **kwargs)
                error = self._error_for(response)
            except httpx.ConnectError as exc:  # never reached the provider
                error = Transient(f"could not connect to {self.provider}: {type(exc).__name__}", reached=False)
            except httpx.TimeoutException as exc:
                # A connect timeout never reached it; a read timeout may have (the create could be running).
                reached = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                error = Transient(f"{self.provider} timed out ({type(exc).__name__})", reached=reached)
            except httpx.TransportError as exc:
                error = Transient(f"network error talking to {self.provider}: {type(exc).__name__}")
            self._count("ok" if error is None else type(error).__name__)
            if error is None:
                return response
            if not self._may_retry(error, safe=safe, attempt=attempt):
                raise error
            delay = error.retry_after if error.retry_after is not None else backoff(attempt)
            log.info("%s %s: %s; retrying in %.1fs", self.provider, method, error.message, delay)
            await asyncio.sleep(delay)
            attempt += 1

    def _may_retry(self, error: ProviderError, *, safe: bool, attempt: int) -> bool:
        if attempt >= MAX_IN_CALL_RETRIES:
            return False
        if error.retry_after is not None and error.retry_after > MAX_IN_CALL_WAIT_S:
            return False
        if isinstance(error, RateLimited):
            return True
        if isinstance(error, Transient):
            return safe or not error.reached
        return False

    def _count(self, outcome: str) -> None:
        if self._on_request is not None:
            self._on_request(outcome)

    def _error_for(self, response: httpx.Response) -> ProviderError | None:
        status = response.status_code
        if 200 <= status < 300:
            return None
        body: Any
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = response.text[:300]
        message = error_text(body) or f"HTTP {status}"
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return RateLimited(f"{self.provider} rate limit: {message}", status=status, retry_after=retry_after)
        if self._policy_markers and any(m in message.lower() for m in self._policy_markers):
            return ContentPolicy(message, status=status)
        error = self._classify(status, body, message) if self._classify else None
        error = error or default_classify(status, body, message)
        if error is None:
            error = Transient(f"unexpected HTTP {status} from {self.provider}", status=status)
        if error.retry_after is None:
            error.retry_after = retry_after
        return error

    async def json(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> Any:
        response = await self.request(method, path, safe=safe, **kwargs)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Transient(f"{self.provider} sent a malformed answer (not JSON)") from exc
