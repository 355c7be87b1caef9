"""What the hostile-input tests share: markup that runs if a page renders it as HTML, and JSON of any shape."""
from __future__ import annotations

from hypothesis import strategies as st

# Sets `window.__pwned` if any page ever runs it (an <img> with onerror, and a <script>).
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def json_values(*, max_size: int = 4, max_leaves: int = 12) -> st.SearchStrategy:
    """Any JSON value a parser may be handed (finite numbers: what `json.loads` of a browser's or file's text gives)."""
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=max_size) | st.dictionaries(st.text(max_size=8), inner, max_size=max_size),
        max_leaves=max_leaves,
    )
