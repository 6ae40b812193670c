"""Imagine's error answers: `{"status": "error", "code": <int>, "error": "...", "message": "..."}`.

The code says more than the HTTP status (a missing token is a 400 with code 1000), so it is read first.
"""

from __future__ import annotations

from typing import Any

from bot.providers.base import (
    AuthenticationFailed,
    InvalidInput,
    OutOfCredits,
    ProviderError,
    RateLimited,
    Transient,
)
from bot.providers.imagine.answers import error_body

AUTH_CODES = frozenset({1000, 1001, 1002})  # token missing, invalid, expired
INVALID_REQUEST = 1100
NO_CREDITS = 1101
UNAVAILABLE = 1200
TOO_MANY_REQUESTS = 1202


def classify(status: int, body: Any, message: str) -> ProviderError | None:
    """ProviderHTTP's hook: the documented codes; anything else falls back to the shared status mapping."""
    parsed = error_body(body)
    code = parsed.code if parsed is not None else None
    if code in AUTH_CODES:
        return AuthenticationFailed(message, status=status)
    if code == INVALID_REQUEST:
        return InvalidInput(message, status=status)
    if code == NO_CREDITS or status == 402:
        return OutOfCredits(message, status=status)
    if code == TOO_MANY_REQUESTS:
        return RateLimited(f"imagine rate limit: {message}", status=status)  # Retry-After is added by the caller
    if code == UNAVAILABLE:
        # The API itself answered "unavailable": it did not run the job, and Imagine bills only completed
        # work, so sending the create again cannot bill twice. A bare 5xx (a gateway) stays "may have reached".
        return Transient(f"imagine is unavailable: {message}", status=status, reached=False)
    return None
