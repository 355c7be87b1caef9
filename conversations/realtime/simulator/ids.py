"""Identifiers shaped like the service's: a prefix and 21 random alphanumerics."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """Return an id such as `item_BqK3…` for prefix "item"."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(21))
