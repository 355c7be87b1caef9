"""The address a request came from, for login throttling: X-Forwarded-For counts only behind configured proxies."""
from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT proxies the one the outermost proxy saw."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote  # X-Forwarded-For is whatever the client wrote: never trusted unless configured
    # Each proxy appends the address it was sent the request from, so the last `proxies` entries are
    # theirs; anything before them came from the client, who could write anything there.
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < proxies or not forwarded[-proxies]:
        return remote  # the request did not come through every proxy
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return remote
