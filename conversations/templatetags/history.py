"""Template filters for the history pages."""
from __future__ import annotations

import datetime
from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def clock(value: datetime.timedelta | None) -> str:
    """A duration as a clock reads it: 0:12, 12:34 or 1:02:03 (negative counts as zero)."""
    if value is None:
        return ""
    seconds = max(0, int(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


@register.filter
def clock_ms(value: int | None) -> str:
    """Milliseconds as a clock reads them (12345 → 0:12), for places in a recording."""
    return "" if value is None else clock(datetime.timedelta(milliseconds=value))


@register.filter
def percent(value: float | None) -> str:
    """A share between 0 and 1 as a whole percentage ("42")."""
    return "" if value is None else str(round(value * 100))


@register.filter
def usd(value: Decimal | None) -> str:
    """An amount of US dollars: to a hundredth of a cent below a dollar (replies cost fractions of a cent)."""
    if value is None:
        return ""
    amount = floatformat(value, 4 if abs(value) < 1 else 2)
    return _("$%(amount)s") % {"amount": amount}
