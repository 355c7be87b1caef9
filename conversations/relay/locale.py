"""Where and in which language the browser's user is: the time zone tools answer in, the language they speak.

Both come from the browser (the talk socket's `tz` parameter, the language cookie or Accept-Language), so both
are checked here and fall back to the site's own.
"""
from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

# An IANA zone name as browsers give it ("America/Argentina/Buenos_Aires", "Etc/GMT+5"): checked before zoneinfo
# looks it up, so no path, NUL or huge value reaches the file system.
_TIME_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")


@dataclass(frozen=True, slots=True)
class BrowserLocale:
    """The user's time zone (IANA, checked) and interface language (one of settings.LANGUAGES)."""

    time_zone: str = "UTC"
    language: str = "en"


def time_zone_from(value: str) -> str:
    """The browser's time zone if it is one this server knows, else the site's (settings.TIME_ZONE)."""
    if value and len(value) <= 64 and _TIME_ZONE_NAME.fullmatch(value):
        try:
            zoneinfo.ZoneInfo(value)
        except (ValueError, KeyError, OSError):  # unknown (ZoneInfoNotFoundError is a KeyError), or a folder
            pass
        else:
            return value
    return settings.TIME_ZONE or "UTC"


def _supported(code: str) -> str | None:
    try:
        return translation.get_supported_language_variant(code[:32])
    except LookupError:
        return None


def language_from_scope(scope: dict[str, Any]) -> str:
    """The language the site's pages use for this browser: its language cookie, else its Accept-Language."""
    cookie = (scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME, "")
    if cookie and (chosen := _supported(cookie)):
        return chosen
    for name, value in scope.get("headers") or ():
        if name == b"accept-language":
            for code, _quality in parse_accept_lang_header(value[:512].decode("latin-1")):
                if code != "*" and (chosen := _supported(code)):
                    return chosen
    return settings.LANGUAGE_CODE


def browser_locale(scope: dict[str, Any], time_zone: str) -> BrowserLocale:
    """The locale of the browser behind a socket's scope, given the `tz` it sent."""
    return BrowserLocale(time_zone=time_zone_from(time_zone), language=language_from_scope(scope))
