"""The shared HTTP client (httpx over aiohttp) against real servers on 127.0.0.1: what adapters rely on.

Most important here is the error mapping, because "a paid create is sent at most once" rests on it: a
request that may have reached the provider must never look like one that could not connect.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from bot.downloads import fetch
from bot.http_client import PUBLIC_ONLY, USER_AGENT, build_http_client
from bot.providers.base import InvalidInput, RateLimited, Transient
from bot.providers.http import ProviderHTTP
from tests.harness import free_port


@dataclass
class Seen:
    requests: list[dict[str, object]] = field(default_factory=list)
    peers: set[object] = field(default_factory=set)


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        seen.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        seen.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": request.raw_path.partition("?")[2],  # as it came over the wire
                "headers": dict(request.headers),
                "sha": hashlib.sha256(body).hexdigest(),
                "size": len(body),
                "content_type": request.content_type,
            }
        )
        return web.json_response({"ok": True, "size": len(body)})

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        seen.requests.append({"method": "POST", "path": request.path})
        files = {
            name: {"filename": value.filename, "sha": hashlib.sha256(value.file.read()).hexdigest()}
            for name, value in form.items()
            if isinstance(value, web.FileField)
        }
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        return web.json_response({"files": files, "fields": fields})

    async def gzipped(_request: web.Request) -> web.Response:
        data = gzip.compress(json.dumps({"compressed": True}).encode())
        return web.Response(body=data, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async def redirect(_request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/json"})

    async def limited(_request: web.Request) -> web.Response:
        return web.json_response({"message": "slow down"}, status=429, headers={"Retry-After": "30"})

    async def big(_request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(_request)
        for _ in range(64):
            await response.write(b"\0" * 65536)  # 4 MiB, no Content-Length: only the streaming cap can stop it
        return response

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/json", record)
    app.router.add_route("*", "/echo/{tail:.*}", record)
    app.router.add_post("/upload", upload)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/limited", limited)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client() as http:
        yield http


async def test_requests_arrive_as_sent_and_connections_are_reused(
    server: tuple[str, Seen], client: httpx.AsyncClient
) -> None:
    base, seen = server
    for n in range(5):
        response = await client.get(f"{base}/json", headers={"Authorization": "Bearer k"}, params={"n": n})
        assert response.status_code == 200
        assert response.json() == {"ok": True, "size": 0}
    assert len(seen.peers) == 1  # one keep-alive connection for five requests
    first = seen.requests[0]
    assert first["headers"]["Authorization"] == "Bearer k"  # type: ignore[index]
    assert first["headers"]["User-Agent"] == USER_AGENT  # type: ignore[index]
    assert [r["query"] for r in seen.requests] == [f"n={n}" for n in range(5)]


async def test_signed_urls_are_sent_byte_for_byte_and_bodies_intact(
    server: tuple[str, Seen], client: httpx.AsyncClient
) -> None:
    base, seen = server
    # A presigned URL: its signature must not be re-quoted, or storage refuses it.
    query = "X-Amz-Credential=AK%2F20261121%2Fus-east-1&X-Amz-Signature=ab%2Bcd%3D&x=a+b"
    body = bytes(range(256)) * 4000
    response = await client.put(f"{base}/echo/photo.jpg?{query}", content=body, headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200
    assert seen.requests[-1]["query"] == query
    assert seen.requests[-1]["sha"] == hashlib.sha256(body).hexdigest()
    assert seen.requests[-1]["content_type"] == "image/jpeg"
    posted = await client.post(f"{base}/json", json={"prompt": "a cat"})
    assert posted.json()["size"] == len(b'{"prompt":"a cat"}')


async def test_multipart_uploads_arrive_whole(server: tuple[str, Seen], client: httpx.AsyncClient) -> None:
    base, _ = server
    image = bytes(range(256)) * 1000
    response = await client.post(
        f"{base}/upload", data={"style": "anime"}, files={"image": ("cat.png", image, "image/png")}
    )
    assert response.json() == {
        "files": {"image": {"filename": "cat.png", "sha": hashlib.sha256(image).hexdigest()}},
        "fields": {"style": "anime"},
    }


async def test_compressed_answers_are_decoded_and_redirects_not_followed(
    server: tuple[str, Seen], client: httpx.AsyncClient
) -> None:
    base, _ = server
    assert (await client.get(f"{base}/gzip")).json() == {"compressed": True}
    redirected = await client.get(f"{base}/redirect")
    assert redirected.status_code == 302
    assert redirected.headers["Location"] == "/json"


async def test_rate_limits_keep_their_retry_after(server: tuple[str, Seen], client: httpx.AsyncClient) -> None:
    base, _ = server
    http = ProviderHTTP(client, provider="test", base_url=base, auth_headers={})
    with pytest.raises(RateLimited) as caught:
        await http.json("GET", "/limited", safe=True)
    assert caught.value.retry_after == 30


async def test_downloads_stop_at_the_size_cap_and_the_pool_recovers(
    server: tuple[str, Seen], client: httpx.AsyncClient
) -> None:
    base, _ = server
    with pytest.raises(InvalidInput, match="larger than 1 MB"):
        await fetch(client, f"{base}/big", max_bytes=1024 * 1024, allow_private=True)
    assert len(await fetch(client, f"{base}/big", allow_private=True)) == 64 * 65536
    assert (await client.get(f"{base}/json")).status_code == 200


async def test_read_timeouts_are_read_timeouts(server: tuple[str, Seen], client: httpx.AsyncClient) -> None:
    base, _ = server
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"{base}/slow", timeout=httpx.Timeout(5.0, read=0.2))


async def test_a_refused_connection_never_reached_the_provider(client: httpx.AsyncClient) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{nobody}/json")
    http = ProviderHTTP(client, provider="test", base_url=nobody, auth_headers={})
    with pytest.raises(Transient) as caught:
        await http.json("POST", "/create", safe=False, json={})
    assert caught.value.reached is False  # so the engine may safely try this create again


async def test_a_connection_lost_after_sending_a_create_is_never_retried(client: httpx.AsyncClient) -> None:
    """The provider reads the whole create, then the connection dies before any answer: the job may be
    running (and billed) there, so the create must not be sent again."""
    received: list[bytes] = []

    async def read_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        received.append(await reader.readexactly(length))
        writer.close()

    raw = await asyncio.start_server(read_then_hang_up, "127.0.0.1", 0)
    port = raw.sockets[0].getsockname()[1]
    try:
        http = ProviderHTTP(client, provider="test", base_url=f"http://127.0.0.1:{port}", auth_headers={})
        with pytest.raises(Transient) as caught:
            await http.json("POST", "/create", safe=False, json={"prompt": "a paid picture"})
        assert caught.value.reached is True
        assert received == [b'{"prompt":"a paid picture"}']  # sent once, not retried
        # A status GET is safe: the same failure is retried within the call.
        with pytest.raises(Transient):
            await http.json("GET", "/status", safe=True)
    finally:
        raw.close()
        await raw.wait_closed()


async def test_the_admins_proxy_settings_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n")[0])
        body = b'{"via": "proxy"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    raw = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = raw.sockets[0].getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    try:
        async with build_http_client() as client:
            answer = await client.get("http://provider.invalid/v1/jobs/7")
            assert answer.json() == {"via": "proxy"}
            assert seen == [b"GET http://provider.invalid/v1/jobs/7 HTTP/1.1"]
            with pytest.raises(httpx.ConnectError):  # NO_PROXY: straight to a name that does not resolve
                await client.get("http://direct.invalid/v1/jobs/7")
            assert len(seen) == 1
    finally:
        raw.close()
        await raw.wait_closed()


async def test_an_upload_to_a_provider_that_stopped_reading_times_out(client: httpx.AsyncClient) -> None:
    hung: list[asyncio.StreamWriter] = []

    async def never_reads(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)  # accepts the connection, then reads nothing: the socket buffers fill up

    raw = await asyncio.start_server(never_reads, "127.0.0.1", 0, limit=1024)
    port = raw.sockets[0].getsockname()[1]
    try:
        with pytest.raises(httpx.ReadTimeout):  # "may have reached it": a create is not sent again
            await client.post(
                f"http://127.0.0.1:{port}/upload",
                content=b"\0" * (32 * 1024 * 1024),  # far more than loopback socket buffers hold
                timeout=httpx.Timeout(0.3),
            )
    finally:
        for writer in hung:
            writer.close()
        raw.close()
        await raw.wait_closed()


async def test_public_only_requests_refuse_names_that_resolve_to_private_addresses(
    server: tuple[str, Seen], client: httpx.AsyncClient
) -> None:
    """Downloads check the address actually connected to, not only a lookup made beforehand: a name that
    resolves to a private address by the time of connecting (DNS rebinding) is refused."""
    base, seen = server
    by_name = base.replace("127.0.0.1", "localhost")
    assert (await client.get(f"{by_name}/json")).status_code == 200  # allowed for ordinary requests
    with pytest.raises(httpx.ConnectError) as refused:
        await client.get(f"{by_name}/json", extensions={PUBLIC_ONLY: True})
    chain = [refused.value.__cause__, getattr(refused.value.__cause__, "os_error", None)]
    assert any("no public address" in str(link) for link in chain), chain
    assert len(seen.requests) == 1
