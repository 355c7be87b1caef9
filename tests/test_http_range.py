"""The Range header parser: one byte range, a 416, or the whole representation; never an exception."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conversations.http_range import UNSATISFIABLE, ByteRange, byte_range, part_spans

sizes = st.integers(min_value=0, max_value=10**12)


@given(st.text(), sizes)
def test_any_header_gives_none_416_or_a_range_inside_the_representation(header, size):
    result = byte_range(header, size)
    assert result is None or result is UNSATISFIABLE or (
        isinstance(result, ByteRange) and 0 <= result.start <= result.end < size
    )


range_like = st.from_regex(r"\A[ \t]*(?i:bytes)[ \t]*=[ \t]*[0-9]{0,25}-[0-9]{0,25}(,[ \t]*[0-9]{0,4}-[0-9]{0,4})?\Z")


@given(range_like, sizes)
def test_headers_that_look_like_ranges_never_leave_the_representation(header, size):
    result = byte_range(header, size)
    assert result is None or result is UNSATISFIABLE or 0 <= result.start <= result.end < size


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(1, 10**6))
def test_a_first_last_range_is_clamped_to_the_end_or_unsatisfiable(first, extra, size):
    last = first + extra
    result = byte_range(f"bytes={first}-{last}", size)
    if first >= size:
        assert result is UNSATISFIABLE
    else:
        assert result == ByteRange(first, min(last, size - 1))


@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_a_suffix_range_is_the_last_bytes_or_all_of_them(suffix, size):
    assert byte_range(f"bytes=-{suffix}", size) == ByteRange(max(0, size - suffix), size - 1)


@given(st.lists(st.integers(0, 50), max_size=6), st.data())
def test_the_spans_of_the_parts_join_to_exactly_the_range(part_sizes, data):
    parts = [bytes((index * 7 + n) % 256 for n in range(size)) for index, size in enumerate(part_sizes)]
    whole = b"".join(parts)
    if not whole:
        return
    start = data.draw(st.integers(0, len(whole) - 1))
    end = data.draw(st.integers(start, len(whole) - 1))
    spans = part_spans(part_sizes, ByteRange(start, end))
    assert b"".join(parts[i][offset:offset + length] for i, offset, length in spans) == whole[start:end + 1]
    assert all(length > 0 for _, _, length in spans)


@pytest.mark.parametrize("header,expected", [
    ("bytes=0-99", ByteRange(0, 99)),
    ("bytes=100-", ByteRange(100, 999)),
    ("bytes=-100", ByteRange(900, 999)),
    ("bytes=-5000", ByteRange(0, 999)),
    ("bytes=990-5000", ByteRange(990, 999)),
    ("bytes=999-999", ByteRange(999, 999)),
    ("BYTES=0-0", ByteRange(0, 0)),
    ("bytes=0-9, ", ByteRange(0, 9)),  # an empty list element is skipped
    ("bytes=00010-00019", ByteRange(10, 19)),
    ("bytes=0-" + "9" * 5000, ByteRange(0, 999)),  # too long for int(): still a clamp, not a crash
])
def test_a_single_range_is_read_as_rfc_9110_says(header, expected):
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=" + "9" * 5000 + "-"])
def test_a_range_past_the_end_is_unsatisfiable(header):
    assert byte_range(header, 1000) is UNSATISFIABLE


@pytest.mark.parametrize("header", [
    None, "", "bytes=", "bytes=-", "bytes=abc", "bytes=5-1", "bytes 0-1", "items=0-1", "bytes=0-1-2",
    "bytes=0-1,2-3", "bytes=0-0,-1", "bytes=١-٢", "bytes=²-", "bytes=+1-2", "bytes=0x10-", "bytes=1.5-2",
])
def test_a_malformed_or_multiple_range_means_the_whole_file(header):
    assert byte_range(header, 1000) is None


def test_nothing_in_an_empty_representation_is_satisfiable():
    assert byte_range("bytes=0-", 0) is UNSATISFIABLE
    assert byte_range("bytes=-10", 0) is UNSATISFIABLE


def test_the_content_range_names_the_bytes_and_the_size():
    assert ByteRange(10, 19).content_range(1000) == "bytes 10-19/1000"
    assert ByteRange(10, 19).length == 10
