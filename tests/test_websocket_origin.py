"""Only the site's own origin (scheme, host and port) or a CSRF_TRUSTED_ORIGINS entry may open a WebSocket."""
from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator

from voiceapp.origins import parse_origin

pytestmark = pytest.mark.django_db(transaction=True)


async def connects(cookie: bytes, *, origin: bytes | None, host: bytes = b"localhost:8000", scheme: str = "ws",
                   extra: list[tuple[bytes, bytes]] | None = None) -> bool:
    """Open the check socket through the whole ASGI application as a logged-in browser; True if accepted."""
    from voiceapp.asgi import application

    headers = [(b"host", host), (b"cookie", cookie), *(extra or [])]
    if origin is not None:
        headers.append((b"origin", origin))
    comm = WebsocketCommunicator(application, "/ws/check/", headers=headers)
    comm.scope["scheme"] = scheme
    accepted, _ = await comm.connect()
    if accepted:
        await comm.send_json_to({"type": "ping", "t": 1})
        assert await comm.receive_json_from() == {"type": "pong", "t": 1}
    # Refused sockets were closed before accept, which the server answers with HTTP 403.
    await comm.disconnect()
    return accepted


@pytest.mark.asyncio
async def test_the_sites_own_origin_is_accepted(cookie):
    assert await connects(cookie, origin=b"http://localhost:8000")


@pytest.mark.asyncio
async def test_the_default_port_may_be_implied_on_either_side(cookie):
    assert await connects(cookie, origin=b"http://localhost", host=b"localhost")
    assert await connects(cookie, origin=b"http://localhost:80", host=b"localhost")
    assert await connects(cookie, origin=b"https://localhost", host=b"localhost:443", scheme="wss")


@pytest.mark.asyncio
async def test_origin_case_is_ignored(cookie):
    assert await connects(cookie, origin=b"HTTP://LocalHost:8000")


@pytest.mark.asyncio
async def test_another_port_on_the_same_host_is_refused(cookie):
    assert not await connects(cookie, origin=b"http://localhost:9999")


@pytest.mark.asyncio
async def test_another_scheme_on_the_same_host_and_port_is_refused(cookie):
    assert not await connects(cookie, origin=b"https://localhost:8000")
    assert not await connects(cookie, origin=b"http://localhost:8000", scheme="wss")


@pytest.mark.asyncio
async def test_another_host_is_refused(cookie):
    assert not await connects(cookie, origin=b"http://127.0.0.1:8000")
    assert not await connects(cookie, origin=b"http://evil.example:8000")


@pytest.mark.asyncio
async def test_a_missing_origin_is_refused(cookie):
    assert not await connects(cookie, origin=None)


@pytest.mark.parametrize("origin", [b"null", b"", b"localhost:8000", b"ftp://localhost:8000", b"http://localhost:8000/x",
                                    b"http://localhost:notaport"])
@pytest.mark.asyncio
async def test_null_and_malformed_origins_are_refused(cookie, origin):
    assert not await connects(cookie, origin=origin)


@pytest.mark.asyncio
async def test_a_host_outside_allowed_hosts_is_refused_even_with_a_matching_origin(cookie, settings):
    settings.ALLOWED_HOSTS = ["voice.example.com"]
    assert not await connects(cookie, origin=b"http://localhost:8000")


@pytest.mark.asyncio
async def test_a_configured_trusted_origin_is_accepted(cookie, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://voice.example.com"]
    assert await connects(cookie, origin=b"https://voice.example.com", host=b"localhost:8000")
    assert not await connects(cookie, origin=b"http://voice.example.com", host=b"localhost:8000")
    assert not await connects(cookie, origin=b"https://voice.example.com:8443", host=b"localhost:8000")


@pytest.mark.asyncio
async def test_a_wildcard_trusted_origin_accepts_subdomains_only(cookie, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]
    assert await connects(cookie, origin=b"https://voice.example.com")
    assert not await connects(cookie, origin=b"https://example.com.evil.test")
    assert not await connects(cookie, origin=b"https://evilexample.com")


@pytest.mark.asyncio
async def test_the_proxy_ssl_header_counts_only_when_configured(cookie, settings):
    forwarded = [(b"x-forwarded-proto", b"https")]
    assert not await connects(cookie, origin=b"https://localhost:8000", extra=forwarded)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert await connects(cookie, origin=b"https://localhost:8000", extra=forwarded)
    assert not await connects(cookie, origin=b"http://localhost:8000", extra=forwarded)


@pytest.mark.asyncio
async def test_existing_clients_with_origin_http_localhost_still_connect(cookie):
    from tests.relay import communicator

    comm = communicator(cookie, path="/ws/check/")
    accepted, _ = await comm.connect()
    assert accepted
    await comm.disconnect()


def test_origins_are_parsed_with_default_ports_and_ipv6():
    assert parse_origin("https://Example.com") == ("https", "example.com", 443)
    assert parse_origin("http://[::1]:8000") == ("http", "[::1]", 8000)
    assert parse_origin("null") is None
