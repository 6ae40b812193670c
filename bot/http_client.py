"""The one HTTP client every provider adapter and download shares: httpx's API over aiohttp's connection pool.

Adapters are written against `httpx.AsyncClient` (typed, injectable, one timeout and error model). Its
default transport (httpcore on anyio) costs ~1 ms of CPU per request; aiohttp, already loaded for discord.py,
~0.3 ms. With 10,000 long jobs in flight, status polls are most of what the bot does, so the transport is
aiohttp (openai-python offers the same pairing for the same reason).

Errors are mapped with care, because the engine's "submitted at most once" rests on them: only failures
where the request provably never left (no connection, connect timeout) become `httpx.ConnectError` /
`httpx.ConnectTimeout`; a connection lost after sending becomes `httpx.ReadError`, so a create that may
have reached the provider is never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
import yarl
from aiohttp.abc import ResolveResult

from bot.version import VERSION

# Explicit timeouts: providers' image endpoints can take a minute; connecting should never take long.
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
HTTP_LIMITS = httpx.Limits(max_connections=100, keepalive_expiry=15.0)
USER_AGENT = f"Easel/{VERSION} (+self-hosted Discord bot)"
CHUNK_SIZE = 64 * 1024
# A request extension: connect only to public addresses, checked on the addresses actually connected to, so
# a name that resolves to a public address for a pre-check and to a private one a moment later (DNS
# rebinding) still cannot make the bot fetch from the admin's network. Set by bot.downloads.
PUBLIC_ONLY = "easel.public_only"


def is_public_address(address: str) -> bool:
    """Globally routable only: `is_global` also excludes shared address space (100.64.0.0/10, where some
    clouds put metadata services), documentation and benchmarking ranges, and IPv4-mapped private IPv6."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PublicOnlyResolver(aiohttp.ThreadedResolver):
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = [r for r in await super().resolve(host, port, family) if is_public_address(r["host"])]
        if not found:
            raise OSError(f"{host} has no public address")
        return found


def _mapped(exc: BaseException) -> httpx.TransportError | None:
    """The httpx error for an aiohttp one; order matters (most specific first)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connecting, or waiting for a pooled connection
        return httpx.ConnectTimeout(str(exc) or "connect timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, TLS handshake: nothing was sent
        return httpx.ConnectError(str(exc))
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timeout")
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(str(exc))
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.ReadError(str(exc))
    if isinstance(exc, aiohttp.ClientError | OSError):  # disconnected or reset once the request may be out
        return httpx.ReadError(str(exc) or type(exc).__name__)
    return None


@contextlib.contextmanager
def _translating() -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
        mapped = _mapped(exc)
        if mapped is None:
            raise
        raise mapped from exc


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # certifi's roots, or SSL_CERT_FILE; ~35 ms to build, so built once


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _translating():
            async for chunk in self._response.content.iter_chunked(CHUNK_SIZE):
                yield chunk

    async def aclose(self) -> None:
        # A fully read body returns the connection to the pool; a half-read one (a refused download) closes it.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, limits: httpx.Limits = HTTP_LIMITS, ssl_context: ssl.SSLContext | None = None) -> None:
        self._limits = limits
        self._ssl = ssl_context or _default_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._public_session: aiohttp.ClientSession | None = None
        # HTTP(S)_PROXY and NO_PROXY, read once: aiohttp's trust_env reads them (and ~/.netrc, in a thread)
        # on every request, which doubled the CPU cost of a poll.
        self._proxies = {k: v for k, v in urllib.request.getproxies_environment().items() if k in ("http", "https")}

    def _open(self, *, public_only: bool = False) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop, as aiohttp requires.
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry or 15.0,
            ssl=self._ssl,
            resolver=_PublicOnlyResolver() if public_only else None,
        )
        return aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False)

    def _proxy_for(self, url: httpx.URL) -> str | None:
        if not self._proxies or urllib.request.proxy_bypass(url.host):
            return None
        return self._proxies.get(url.scheme)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self._proxy_for(request.url)
        # Through a proxy the proxy resolves the name; its own (often private) address is the admin's choice.
        session = self._public() if request.extensions.get(PUBLIC_ONLY) and proxy is None else self._any()
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "transfer-encoding"]
        # aiohttp has no write timeout: bound the whole send (connect, upload, wait for the answer's head) by
        # the sum of httpx's phases, so an upload to a provider that stopped reading cannot hang a job.
        phases = [timeout.get(k) for k in ("pool", "connect", "write", "read")]
        limit = None if any(p is None for p in phases) else sum(phases)
        with _translating():
            async with asyncio.timeout(limit):
                response = await session.request(
                    request.method,
                    # Already encoded by httpx: re-quoting would break signed URLs.
                    yarl.URL(str(request.url), encoded=True),
                    headers=headers,
                    data=body or None,
                    allow_redirects=False,  # httpx follows redirects itself when asked to
                    proxy=proxy,
                    timeout=aiohttp.ClientTimeout(
                        total=None,
                        connect=timeout.get("pool"),
                        sock_connect=timeout.get("connect"),
                        sock_read=timeout.get("read"),
                    ),
                )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    def _any(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._open()
        return self._session

    def _public(self) -> aiohttp.ClientSession:
        if self._public_session is None or self._public_session.closed:
            self._public_session = self._open(public_only=True)
        return self._public_session

    async def aclose(self) -> None:
        for session in (self._session, self._public_session):
            if session is not None:
                await session.close()
        self._session = self._public_session = None


def build_http_client(*, limits: httpx.Limits = HTTP_LIMITS) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits),
        timeout=HTTP_TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )
