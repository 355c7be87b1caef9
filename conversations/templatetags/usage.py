"""Template filters for the usage pages."""
from __future__ import annotations

from decimal import Decimal

from django import template
from django.template.defaultfilters import floatformat
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def usd_exact(value: Decimal | None) -> str:
    """US dollars to the millionth, as costs are stored and as the usage CSV has them."""
    if value is None:
        return ""
    return _("$%(amount)s") % {"amount": floatformat(value, 6)}
