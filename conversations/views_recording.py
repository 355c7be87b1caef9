"""The recording of a conversation as one MP3, to its owner only, with byte ranges so players can seek."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from . import http_range, selectors
from .models import Conversation, RecordingChunk
from .selectors import Recording

# Read this much of a chunk file at a time: memory per download stays small whatever the recording's length.
BLOCK_BYTES = 64 * 1024


def _etag(recording: Recording) -> str:
    """A strong validator: chunks are only ever added, so count, size and the newest chunk pin the bytes."""
    return f'"{len(recording.chunks)}-{recording.size}-{recording.chunks[-1].pk}"'


def _filename(conversation: Conversation) -> str:
    """An ASCII file name from the title and the local start time, safe in a header and on any disk."""
    title = slugify(conversation.title)[:50].strip("-") or "conversation"
    return f"{title}-{timezone.localtime(conversation.started_at):%Y-%m-%d-%H%M}.mp3"


def _read_blocks(chunk: RecordingChunk, offset: int, length: int) -> Iterator[bytes]:
    """`length` bytes of one chunk's file from `offset`, a block at a time; the file is closed whatever happens."""
    with chunk.file.open("rb") as f:
        f.seek(offset)
        while length > 0:
            block = f.read(min(BLOCK_BYTES, length))
            if not block:
                return  # a file shorter than its row says: the client sees a short body, not a hang
            length -= len(block)
            yield block


def _stream(spans: list[tuple[RecordingChunk, int, int]]) -> Iterator[bytes]:
    """The bytes of the spans, one file open at a time."""
    for chunk, offset, length in spans:
        yield from _read_blocks(chunk, offset, length)


async def _astream(spans: list[tuple[RecordingChunk, int, int]]) -> AsyncIterator[bytes]:
    """The same bytes for an ASGI server, each blocking open and read in a worker thread."""
    for chunk, offset, length in spans:
        blocks = _read_blocks(chunk, offset, length)  # opens nothing until its first block is asked for
        try:
            while (block := await sync_to_async(next, thread_sensitive=False)(blocks, None)) is not None:
                yield block
        finally:
            await sync_to_async(blocks.close, thread_sensitive=False)()


@require_safe
def recording(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """The conversation's recording as audio/mpeg: whole, one byte range (206) or a 416; `?download=1` saves it."""
    conversation = selectors.conversation_for(user=request.user, conversation_id=conversation_id)
    found = selectors.recording_of(conversation=conversation) if conversation is not None else None
    if found is None:
        # Someone else's conversation, none, and one never recorded look the same.
        raise Http404("No such recording.")
    size, etag = found.size, _etag(found)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Accept-Ranges": "bytes"}
    if request.GET.get("download") == "1":
        headers["Content-Disposition"] = content_disposition_header(True, _filename(conversation))
    unchanged = get_conditional_response(request, etag=etag)
    if unchanged is not None:
        for name, value in headers.items():
            unchanged.headers.setdefault(name, value)
        return unchanged

    wanted = None
    # Range is defined for GET only; If-Range with another validator means the client's copy is stale.
    if request.method == "GET" and request.headers.get("If-Range", etag) == etag:
        wanted = http_range.byte_range(request.headers.get("Range"), size)
    if wanted is http_range.UNSATISFIABLE:
        return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    status = 200
    if isinstance(wanted, http_range.ByteRange):
        status = 206
        headers["Content-Range"] = wanted.content_range(size)
    else:
        wanted = http_range.ByteRange(0, size - 1)
    headers["Content-Length"] = str(wanted.length)

    if request.method == "HEAD" or size == 0:
        body: Iterator[bytes] | AsyncIterator[bytes] = iter(())
    else:
        chunks = found.chunks
        spans = [(chunks[i], offset, length) for i, offset, length in
                 http_range.part_spans([c.size for c in chunks], wanted)]
        # Django buffers a sync iterator whole under ASGI, and an async one under WSGI: give each its own kind.
        body = _astream(spans) if isinstance(request, ASGIRequest) else _stream(spans)
    return StreamingHttpResponse(body, status=status, content_type="audio/mpeg", headers=headers)
