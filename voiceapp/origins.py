"""WebSocket origin check: only the site's own origin, or one listed in CSRF_TRUSTED_ORIGINS, may open a socket."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
# The ASGI scope names the socket's scheme; an origin names the page's.
PAGE_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}

Origin = tuple[str, str, int]  # scheme, lower-case host (IPv6 in brackets), port


def parse_origin(value: str) -> Origin | None:
    """Split `scheme://host[:port]` into its parts with the default port filled in, or None if it is not one."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    # An origin is exactly scheme://host[:port]: a path, user or query means it is something else.
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in {"", "/"} or parts.query or parts.username:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    """The first value of a request header, decoded as Latin-1 like Django's META."""
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def request_scheme(scope: dict[str, Any]) -> str:
    """The page scheme the socket came in on, trusting SECURE_PROXY_SSL_HEADER only when it is configured."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        meta_name, secure_value = proxy_header
        # Django's META form (HTTP_X_FORWARDED_PROTO) back to the header name (x-forwarded-proto).
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        value = _header(scope, name)
        if value is not None:
            # Like Django: a proxy chain may list several; the first is the client's.
            return "https" if value.split(",")[0].strip() == secure_value else "http"
    return PAGE_SCHEME.get(scope.get("scheme", "ws"), "http")


def own_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin of the site as this request addressed it, or None if the host is not allowed."""
    host = None
    if getattr(settings, "USE_X_FORWARDED_HOST", False):
        host = _header(scope, b"x-forwarded-host")
        host = host.split(",")[0].strip() if host else None
    host = host or _header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]  # what Django's HTTP side allows then
    if not domain or not validate_host(domain, allowed_hosts):
        return None
    return parse_origin(f"{request_scheme(scope)}://{host}")


def trusted(origin: Origin, patterns: list[str]) -> bool:
    """Whether the origin is listed exactly, or under a `scheme://*.domain` wildcard as Django's CSRF check allows."""
    scheme, host, port = origin
    for pattern in patterns:
        wildcard = "://*." in pattern
        allowed = parse_origin(pattern.replace("://*.", "://", 1) if wildcard else pattern)
        if allowed is None:
            continue
        a_scheme, a_host, a_port = allowed
        if (scheme, port) != (a_scheme, a_port):
            continue
        if host == a_host or (wildcard and host.endswith("." + a_host)):
            return True
    return False


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether a browser on the socket's Origin may use this site's sockets."""
    value = _header(scope, b"origin")
    # No Origin (not a browser, or a stripped header) and `null` (sandboxed frames, file://) are refused.
    if not value or value.strip().lower() == "null":
        return False
    origin = parse_origin(value)
    if origin is None:
        return False
    if origin == own_origin(scope):
        return True
    return trusted(origin, list(settings.CSRF_TRUSTED_ORIGINS))


class SameOriginValidator:
    """ASGI middleware that refuses a WebSocket with 403 before accept unless its Origin is allowed.

    Channels' AllowedHostsOriginValidator compares the host only, so a page on another port or
    scheme of an allowed host (http://127.0.0.1:9999 for a site on :8000) could open a socket with
    the user's cookies. This compares scheme, host and port, as a browser's same-origin policy does.
    """

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """Pass allowed sockets (and anything that is not a socket) on; deny the rest."""
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
