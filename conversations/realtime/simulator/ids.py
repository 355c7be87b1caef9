"""Identifiers shaped like the service's: a prefix and random alphanumerics (21, or 16 for call ids)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 21) -> str:
    """Return an id such as `item_BqK3…` for prefix "item" (the service's call ids are `call_` and 16)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
