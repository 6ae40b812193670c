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

AUTH_CODES = frozenset({1000, 1001, 1002})  # token missing, invalid, expired
INVALID_REQUEST = 1100
NO_CREDITS = 1101
UNAVAILABLE = 1200
TOO_MANY_REQUESTS = 1202


def error_code(body: Any) -> int | None:
    if isinstance(body, dict):
        code = body.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            return code
        if isinstance(code, str) and code.strip().isdigit():
            return int(code.strip())
    return None


def is_error_body(body: Any) -> bool:
    return isinstance(body, dict) and (body.get("status") == "error" or error_code(body) is not None)


def classify(status: int, body: Any, message: str) -> ProviderError | None:
    """ProviderHTTP's hook: the documented codes; anything else falls back to the shared status mapping."""
    code = error_code(body)
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
