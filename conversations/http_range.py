"""The HTTP Range header (RFC 9110 §14) for one byte sequence: a single range to send, or none.

Pure functions, no Django: `byte_range` reads a header, `part_spans` maps a range onto a
representation stored in consecutive parts (a recording's chunk files).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

# first-pos "-" [ last-pos ] or "-" suffix-length; ASCII digits only (str.isdigit would take "²").
_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)")
_SUFFIX_RANGE = re.compile(r"-([0-9]+)")
_UNIT = re.compile(r"[ \t]*bytes[ \t]*=(.*)", re.IGNORECASE | re.DOTALL)
# Positions past any real size; caps digit strings that int() would refuse (over 4300 digits) or waste time on.
_HUGE = 10**18


@dataclasses.dataclass(frozen=True)
class ByteRange:
    """Bytes `start` to `end` inclusive, both within the representation."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        """The Content-Range header value of a 206 response carrying this range."""
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable:
    """A well-formed Range that asks for nothing inside the representation: the answer is a 416."""

    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE = Unsatisfiable()


def _number(digits: str) -> int:
    """The value of a run of ASCII digits, capped at _HUGE."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else _HUGE


def byte_range(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """What a Range header asks of a `size`-byte representation; never raises.

    None means "send the whole thing with a 200": no header, a malformed one, another unit, or
    several ranges (RFC 9110 lets a server ignore Range, and one range is all a media player asks).
    """
    if not header:
        return None
    unit = _UNIT.fullmatch(header)
    if unit is None:
        return None
    # A list allows empty elements ("bytes=0-9,"): recipients skip them (RFC 9110 §5.6.1.2).
    specs = [spec.strip(" \t") for spec in unit.group(1).split(",")]
    specs = [spec for spec in specs if spec]
    if len(specs) != 1:
        return None
    spec = specs[0]
    if match := _INT_RANGE.fullmatch(spec):
        first = _number(match.group(1))
        last = _number(match.group(2)) if match.group(2) else None
        if last is not None and last < first:
            return None  # invalid, not unsatisfiable: the header is ignored
        if first >= size:
            return UNSATISFIABLE
        return ByteRange(first, size - 1 if last is None else min(last, size - 1))
    if match := _SUFFIX_RANGE.fullmatch(spec):
        suffix = _number(match.group(1))
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size - 1)
    return None


def part_spans(sizes: Sequence[int], wanted: ByteRange) -> list[tuple[int, int, int]]:
    """The pieces of consecutive parts of these sizes that make up `wanted`: (part index, offset in it, length)."""
    spans = []
    part_start = 0
    for index, size in enumerate(sizes):
        part_end = part_start + size  # exclusive
        if part_start > wanted.end:
            break
        begin, end = max(wanted.start, part_start), min(wanted.end + 1, part_end)
        if begin < end:
            spans.append((index, begin - part_start, end - begin))
        part_start = part_end
    return spans
