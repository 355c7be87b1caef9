"""Plain words for upstream failures: what the user sees, what staff see, and the close code."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..realtime.client import UpstreamError, UpstreamRejected

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # the browser sent faster than its socket's flood limits allow
CLOSE_REPLACED = 4000
CLOSE_UNAUTHENTICATED = 4001
CLOSE_NOT_FOUND = 4004
CLOSE_DELETED = 4410
CLOSE_ENDED_BY_STAFF = 4430
CLOSE_UPSTREAM_CONFIG = 4400
CLOSE_UPSTREAM_AUTH = 4401
CLOSE_UPSTREAM_NOT_FOUND = 4404
CLOSE_THROTTLED = 4429
CLOSE_UPSTREAM_UNAVAILABLE = 4502
CLOSE_BUSY = 4503  # the deployment is full or cooling down: try again in `retry_after_s`
# The wait to tell the user after a 429 that named none.
DEFAULT_RETRY_AFTER_S = 30
CLOSE_SERVER_ERROR = 1011


# What anyone but staff is told when the service refuses the app's setup (credentials, deployment,
# api-version): the same words whatever the cause, since setting names, role assignments, deployment
# names and upstream statuses are for the operator, who finds them in the log and on staff pages.
NOT_AVAILABLE = ("The voice service is not available right now; please try again later or tell the site's "
                 "operator.")


@dataclass(frozen=True)
class Failure:
    """A problem as the browser is told it: a code, plain words and the close code."""

    code: str
    message: str
    close_code: int
    retry_after_s: int | None = None  # busy: when trying again makes sense


def upstream_failure(exc: UpstreamError, deployment: str, *, staff: bool = False) -> Failure:
    """Turn an upstream failure into plain words; staff get the setting to check, others no internals (NOT_AVAILABLE)."""
    if isinstance(exc, UpstreamRejected):
        if exc.status in (401, 403):
            return Failure(
                "upstream_auth",
                "The realtime service refused this app's credentials. Check AZURE_OPENAI_API_KEY, or for "
                "keyless sign-in the identity's “Cognitive Services OpenAI User” role assignment."
                if staff
                else NOT_AVAILABLE,
                CLOSE_UPSTREAM_AUTH,
            )
        if exc.status == 404:
            return Failure(
                "upstream_not_found",
                f"The realtime deployment “{deployment}” was not found. Check AZURE_OPENAI_DEPLOYMENT "
                "(the deployment's name, not the model's) and AZURE_OPENAI_ENDPOINT."
                if staff
                else NOT_AVAILABLE,
                CLOSE_UPSTREAM_NOT_FOUND,
            )
        if exc.status == 400:
            return Failure(
                "upstream_config",
                f"The realtime service refused the connection as a bad request: check AZURE_OPENAI_API_VERSION "
                f"(unset for GA, or 2025-04-01-preview) and that “{deployment}” is a realtime model deployment."
                if staff
                else NOT_AVAILABLE,
                CLOSE_UPSTREAM_CONFIG,
            )
        if exc.status == 429:
            wait = max(1, math.ceil(exc.retry_after_s)) if exc.retry_after_s is not None else DEFAULT_RETRY_AFTER_S
            return Failure("busy", f"The voice service is busy right now; try again in {wait} s.", CLOSE_BUSY, wait)
    return Failure(
        "upstream_unavailable",
        "The connection to the voice service was lost or could not be made. Please try again in a moment.",
        CLOSE_UPSTREAM_UNAVAILABLE,
    )
