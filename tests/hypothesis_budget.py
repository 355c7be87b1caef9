"""How many examples the slow, whole-path hypothesis suites run: a CI budget, or ten times it on demand."""
from __future__ import annotations

import os


def examples(ci: int) -> int:
    """`ci` examples, or ten times as many with HYPOTHESIS_PROFILE=long (a deeper run before a release)."""
    return ci * 10 if os.environ.get("HYPOTHESIS_PROFILE", "") == "long" else ci
