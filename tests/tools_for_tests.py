"""Deployer tools for the relay's tests, named by dotted path in REALTIME_TOOLS: one that fails, one that is slow."""
from __future__ import annotations

import threading

from conversations.tools import tool

# Set by a test to let the slow tool finish (else it sleeps until its time limit or a cancel).
release = threading.Event()


@tool(description="Look an order up (always fails: a broken deployer tool).")
def broken_lookup() -> str:
    """Fail as a tool with a bug does."""
    raise RuntimeError("the order database is on fire")


@tool(description="Look a parcel up (slow: waits until the test releases it, at most 5 s).")
def slow_lookup() -> str:
    """Take as long as the test wants, as a tool waiting on a slow service does."""
    release.wait(5.0)
    return "parcel found"


# Markup in every text a tool gives the page: the browser must show it as text and never run it.
HOSTILE_TEXT = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


@tool(description="Look a receipt up (its words for the page are hostile markup).", working_text=HOSTILE_TEXT,
      summarize=lambda value, arguments: f"Found {HOSTILE_TEXT}")
def hostile_lookup() -> str:
    """Answer with markup, as a tool passing on what a web page said might."""
    return HOSTILE_TEXT
