"""Redis going away and coming back, as this process sees it: which errors mean "away", and one log line each way.

Every Redis user (limits, deployment capacity, the live registry, the channel layer) carries on without it
(README "When things fail"); they report failures and successes here, so an outage is logged once when
it starts, at WARNING, and once when it ends, instead of once per conversation per second. No Django here.
"""
from __future__ import annotations

import logging
import time

import redis.exceptions

logger = logging.getLogger(__name__)

# Redis is unreachable or not answering: the callers fall back and try again later. Anything else a Redis
# call raises (a script error, a wrong type) is a bug and is not caught as an outage.
REDIS_DOWN: tuple[type[BaseException], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                                              ConnectionError, TimeoutError, OSError)


class Outage:
    """Whether a dependency is away, with one WARNING when it goes and one when it returns."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.since: float | None = None  # monotonic time of the first failure of this outage

    @property
    def down(self) -> bool:
        """Whether the last call failed."""
        return self.since is not None

    def failed(self, exc: BaseException, doing: str) -> None:
        """A call failed: the first failure of an outage is a WARNING, the rest DEBUG."""
        if self.since is None:
            self.since = time.monotonic()
            logger.warning("%s is unavailable (%s: %s) while %s; live conversations carry on, new ones are admitted "
                           "with this process's own limits until it is back", self.name, type(exc).__name__, exc, doing)
        else:
            logger.debug("%s still unavailable while %s: %s", self.name, doing, exc)

    def recovered(self) -> None:
        """A call worked: log the end of an outage once."""
        if self.since is not None:
            logger.warning("%s is back after %.0f s", self.name, time.monotonic() - self.since)
            self.since = None


# Process-wide, like the connection pools it describes.
redis_outage = Outage("Redis")
