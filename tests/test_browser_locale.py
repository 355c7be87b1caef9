"""Where and in which language the talk socket's user is: the `tz` parameter (a time zone the server knows, or the
site's own; never a path or junk) and the language cookie or Accept-Language (one of the site's languages)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversations.relay.locale import language_from_scope, time_zone_from


@pytest.mark.parametrize("name", ["Europe/Berlin", "America/Argentina/Buenos_Aires", "UTC", "Etc/GMT+5", "Asia/Kolkata"])
def test_a_known_time_zone_is_kept(name):
    assert time_zone_from(name) == name


@pytest.mark.parametrize("name", ["", "Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime", "Europe/../UTC",
                                  "America", "Europe/Berlin\x00", "x" * 100, "Europe/Berlin; DROP", "europe berlin"])
def test_anything_else_falls_back_to_the_sites_time_zone(name, settings):
    settings.TIME_ZONE = "Europe/Paris"
    assert time_zone_from(name) == "Europe/Paris"


@given(st.text(max_size=80))
def test_any_text_gives_a_time_zone_name(value):
    import zoneinfo

    assert zoneinfo.ZoneInfo(time_zone_from(value)).key


def scope_with(cookie: str | None = None, accept: bytes | None = None) -> dict:
    headers = [(b"accept-language", accept)] if accept is not None else []
    return {"cookies": {"django_language": cookie} if cookie is not None else {}, "headers": headers}


def test_the_language_cookie_wins_over_accept_language():
    assert language_from_scope(scope_with("de", b"es-ES,es;q=0.9")) == "de"


@pytest.mark.parametrize(("accept", "language"), [(b"es-ES,es;q=0.9,en;q=0.8", "es"), (b"fr-FR, de;q=0.5", "de"),
                                                   (b"de-AT", "de"), (b"fr, it", "en"), (b"", "en"), (b"*", "en")])
def test_accept_language_picks_the_first_language_the_site_speaks(accept, language):
    assert language_from_scope(scope_with(accept=accept)) == language


def test_an_unknown_language_cookie_falls_back_to_accept_language():
    assert language_from_scope(scope_with("klingon", b"es")) == "es"


@given(st.text(max_size=64), st.binary(max_size=600))
def test_any_cookie_and_header_give_one_of_the_sites_languages(cookie, accept):
    from django.conf import settings

    assert language_from_scope(scope_with(cookie, accept)) in {code for code, _ in settings.LANGUAGES}
