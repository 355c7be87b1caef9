"""The talk socket's `tz` parameter: a time zone the server knows, or the site's own; never a path or junk."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversations.relay.consumer import time_zone_from


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

    zoneinfo.ZoneInfo(time_zone_from(value))
