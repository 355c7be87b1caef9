"""A system check that loads the site's tools, so a bad REALTIME_TOOLS fails at startup, not mid-conversation."""
from __future__ import annotations

from typing import Any

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def tools_settings_check(app_configs: Any, **kwargs: Any) -> list[Any]:
    """Every REALTIME_TOOLS path imports and describes a tool, and REALTIME_TOOLS_DISABLED names only tools."""
    from .selectors import site_tools

    try:
        site_tools()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint='See the README, "Tools (function calling)".', id="conversations.E003")]
    return []
