"""A logging filter that keeps API keys and bearer tokens out of every log line, whatever the level."""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

REDACTED = "[redacted]"
# A header, dict entry or query parameter that carries a credential, in the forms websockets,
# reprs and URLs write them: `api-key: X`, `'Authorization': 'Bearer X'`, `api_key=X`.
_CREDENTIAL = re.compile(
    r"(?i)\b(api[-_]?key|authorization|ocp-apim-subscription-key|access_token)"
    r"(['\"]?\s*[:=]\s*['\"]?)((?:bearer|basic)\s+)?[^\s'\",;&}]+"
)
# A JSON Web Token (what Microsoft Entra ID issues), wherever it appears.
_JWT = re.compile(r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}")
# Shorter values would redact ordinary words; real keys and tokens are far longer.
MIN_SECRET_CHARS = 8
_SETTING_SECRETS = ("AZURE_OPENAI_API_KEY", "OPENAI_API_KEY", "SECRET_KEY")
_ENV_SECRETS = ("AZURE_CLIENT_SECRET",)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace credential header values, JWTs and the given secret strings with a marker."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_CHARS and secret in text:
            text = text.replace(secret, REDACTED)
    text = _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def configured_secrets() -> list[str]:
    """The secrets the app is configured with now (tests and admins may change settings at runtime)."""
    found = [os.environ.get(name, "") for name in _ENV_SECRETS]
    try:
        from django.conf import settings

        if settings.configured:
            found += [str(getattr(settings, name, "") or "") for name in _SETTING_SECRETS]
    except Exception:  # noqa: BLE001 - a log line must never fail because settings are half-loaded
        pass
    return [s for s in found if s]


class RedactSecrets(logging.Filter):
    """Rewrite each record's message (and traceback) with credentials replaced; never drops a record.

    Installed on the console handler and on the loggers that write handshake headers
    (`websockets.client`, `websockets.server`), so a record is clean before any handler sees it.
    """

    def __init__(self, name: str = "", secrets: Iterable[str] = ()) -> None:
        super().__init__(name)
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place and let the record through."""
        secrets = [*self.secrets, *configured_secrets()]
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's problem, not ours
            return True
        clean = redact(message, secrets)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            # Format the traceback now so the handler prints the redacted copy.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True
