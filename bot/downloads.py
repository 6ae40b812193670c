"""Fetching files from URLs we were handed (provider results, Discord attachments), safely.

http(s) only; a size cap enforced while streaming; and no private or loopback addresses unless the
provider's own base URL lives on one (a self-hosted gateway, or the fakes in tests) — otherwise a result
URL could make the bot fetch from the admin's internal network.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import httpx

from bot.http_client import PUBLIC_ONLY, is_public_address
from bot.providers.base import InvalidInput, Transient

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def _is_private(address: str) -> bool:
    return not is_public_address(address)


async def _resolves_private(host: str) -> bool:
    try:
        return _is_private(host)
    except ValueError:
        pass  # a name, not an address
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Transient(f"could not resolve {host}", reached=False) from exc
    return any(_is_private(str(info[4][0])) for info in infos)


async def host_is_private(url: str) -> bool:
    host = urlsplit(url).hostname
    return bool(host) and await _resolves_private(host or "")


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse a URL a provider handed us (a result, a signed upload URL) unless it is http(s) on a public
    address (or the provider itself is private). Checked again at connect time by the HTTP client."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"refusing a non-http(s) URL ({parts.scheme or 'no scheme'})")
    if not allow_private and await _resolves_private(parts.hostname):
        raise InvalidInput("refusing a private or loopback address")


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_private: bool = False,
    headers: dict[str, str] | None = None,
) -> bytes:
    await check_target(url, allow_private=allow_private)
    try:
        async with client.stream(
            "GET",
            url,
            headers=headers,
            timeout=DOWNLOAD_TIMEOUT,
            follow_redirects=False,
            # Checked again on the address actually connected to (see bot.http_client).
            extensions={PUBLIC_ONLY: not allow_private},
        ) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise Transient(f"download failed with HTTP {response.status_code}", status=response.status_code)
            if response.status_code != 200:
                raise InvalidInput(f"download failed with HTTP {response.status_code}", status=response.status_code)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise InvalidInput(f"the file is larger than {max_bytes // (1024 * 1024)} MB")
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise InvalidInput(f"the file is larger than {max_bytes // (1024 * 1024)} MB")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TimeoutException as exc:
        raise Transient(f"download timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise Transient(f"download failed ({type(exc).__name__})") from exc
