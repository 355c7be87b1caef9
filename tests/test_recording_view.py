"""A conversation's recording reaches its owner as one MP3, whole or by byte range, and nobody else."""
from __future__ import annotations

import pytest

from conversations import services, views_recording
from conversations.models import RecordingChunk

from .history import stored
from .recordings import recorded

pytestmark = pytest.mark.django_db


@pytest.fixture
def adas(user):
    """Ada's conversation with a 10 s recording in three chunks; yields (conversation, mp3 bytes, chunks)."""
    conversation = stored(user, [("user", "Hello"), ("assistant", "Hi there")], title="Ada's plan")
    data, chunks = recorded(conversation)
    return conversation, data, chunks


@pytest.fixture
def ada(client, user):
    client.force_login(user)
    return client


def url(conversation, **query) -> str:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return f"/history/{conversation.pk}/recording.mp3{suffix}"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_owner_gets_the_chunks_joined_into_one_mp3(ada, adas):
    conversation, data, chunks = adas
    assert len(chunks) == 3 and sum(c.size for c in chunks) == len(data)
    response = ada.get(url(conversation))
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(data))
    assert response["Cache-Control"] == "private, no-cache"
    assert response["ETag"] == f'"3-{len(data)}-{chunks[-1].pk}"'
    assert "Content-Disposition" not in response
    assert body(response) == data


def test_a_range_across_a_chunk_boundary_gets_exactly_those_bytes(ada, adas):
    conversation, data, chunks = adas
    boundary = chunks[0].size
    start, end = boundary - 50, boundary + chunks[1].size + 10  # the end of chunk 0 to the start of chunk 2
    response = ada.get(url(conversation), HTTP_RANGE=f"bytes={start}-{end}")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
    assert response["Content-Length"] == str(end - start + 1)
    assert body(response) == data[start:end + 1]


@pytest.mark.parametrize("header,piece", [
    ("bytes=100-", slice(100, None)),
    ("bytes=-500", slice(-500, None)),
    ("bytes=0-0", slice(0, 1)),
    ("bytes=5-999999999", slice(5, None)),
])
def test_open_suffix_and_clamped_ranges_get_their_bytes(ada, adas, header, piece):
    conversation, data, _ = adas
    response = ada.get(url(conversation), HTTP_RANGE=header)
    assert response.status_code == 206
    assert body(response) == data[piece]


def test_a_range_past_the_end_is_416_with_the_size(ada, adas):
    conversation, data, _ = adas
    response = ada.get(url(conversation), HTTP_RANGE=f"bytes={len(data)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=9-3", "pages=1-2", "bytes=0-10,20-30"])
def test_a_malformed_or_multiple_range_gets_the_whole_file(ada, adas, header):
    conversation, data, _ = adas
    response = ada.get(url(conversation), HTTP_RANGE=header)
    assert response.status_code == 200
    assert "Content-Range" not in response
    assert body(response) == data


def test_head_gives_the_headers_without_the_bytes(ada, adas):
    conversation, data, _ = adas
    response = ada.head(url(conversation), HTTP_RANGE="bytes=0-9")  # Range applies to GET only
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Type"] == "audio/mpeg" and response["Accept-Ranges"] == "bytes"
    assert body(response) == b""


def test_a_known_etag_is_not_modified_until_a_chunk_is_added(ada, adas):
    conversation, data, chunks = adas
    etag = ada.get(url(conversation))["ETag"]
    response = ada.get(url(conversation), HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response["ETag"] == etag and response["Cache-Control"] == "private, no-cache"
    services.recording_chunk_add(conversation_id=conversation.pk, seq=3, data=b"\xff\xf3" * 48,
                                 start_ms=10_000, duration_ms=24)
    assert ada.get(url(conversation), HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_a_range_for_another_version_gets_the_whole_file(ada, adas):
    conversation, data, _ = adas
    response = ada.get(url(conversation), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"1-2-3"')
    assert response.status_code == 200
    assert body(response) == data
    etag = response["ETag"]
    assert ada.get(url(conversation), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag).status_code == 206


def test_download_saves_it_under_a_safe_name_from_the_title_and_date(ada, user):
    conversation = stored(user, [("user", "Hi")], title='Plans: "Q3"/../räte\r\nX-Evil: 1')
    recorded(conversation, 1.0, parts=1)
    response = ada.get(url(conversation, download=1))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="plans-q3rate-x-evil-1-2026-03-14-0930.mp3"'


def test_an_untitled_recording_downloads_as_conversation(ada, user):
    conversation = stored(user, [("user", "Hi")])
    recorded(conversation, 1.0, parts=1)
    disposition = ada.get(url(conversation, download=1))["Content-Disposition"]
    assert disposition == 'attachment; filename="conversation-2026-03-14-0930.mp3"'


def test_it_is_streamed_in_blocks_not_read_whole(ada, adas, monkeypatch):
    conversation, data, _ = adas
    monkeypatch.setattr(views_recording, "BLOCK_BYTES", 4096)
    blocks = list(ada.get(url(conversation)).streaming_content)
    assert len(blocks) > len(data) // 4096 and max(len(b) for b in blocks) <= 4096
    assert b"".join(blocks) == data


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_asgi_server_gets_an_async_stream_of_the_same_bytes(ada, async_client, user):
    from channels.db import database_sync_to_async
    from django.db import connection

    conversation = await database_sync_to_async(stored)(user, [("user", "Hello")])
    data, chunks = await database_sync_to_async(recorded)(conversation)
    async_client.cookies = ada.cookies
    boundary = chunks[0].size
    response = await async_client.get(url(conversation), headers={"Range": f"bytes={boundary - 3}-{boundary + 3}"})
    assert response.status_code == 206 and response.is_async
    assert b"".join([part async for part in response.streaming_content]) == data[boundary - 3:boundary + 4]
    # The test client leaves the view's thread connected; close it so the test database can be dropped.
    await database_sync_to_async(lambda: connection.close())()


@pytest.fixture
def eve(client, django_user_model):
    """A second user, signed in."""
    client.force_login(django_user_model.objects.create_user(username="eve", password="another long password"))
    return client


def test_another_user_gets_404_for_the_recording_and_the_page(eve, adas):
    conversation, _, _ = adas
    assert eve.get(url(conversation)).status_code == 404
    assert eve.head(url(conversation)).status_code == 404
    assert eve.get(url(conversation), HTTP_RANGE="bytes=0-9").status_code == 404
    page = eve.get(f"/history/{conversation.pk}/")
    assert page.status_code == 404
    assert b"recording.mp3" not in page.content and b"<audio" not in page.content


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_malformed_or_unknown_id_is_404(ada, bad_id):
    assert ada.get(f"/history/{bad_id}/recording.mp3").status_code == 404


def test_a_conversation_without_a_recording_is_404(ada, user):
    conversation = stored(user, [("user", "Not recorded")])
    assert ada.get(url(conversation)).status_code == 404


def test_it_requires_login(client, adas):
    conversation, _, _ = adas
    response = client.get(url(conversation))
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_other_methods_are_refused(ada, adas):
    conversation, _, _ = adas
    assert ada.post(url(conversation)).status_code == 405


def test_deleting_the_conversation_removes_the_recording_and_its_files(ada, adas, django_capture_on_commit_callbacks):
    conversation, _, chunks = adas
    storage = chunks[0].file.storage
    names = [c.file.name for c in chunks]
    assert all(storage.exists(name) for name in names)
    with django_capture_on_commit_callbacks(execute=True):
        assert ada.post(f"/history/{conversation.pk}/delete/").status_code == 302
    assert ada.get(url(conversation)).status_code == 404
    assert not RecordingChunk.objects.filter(conversation_id=conversation.pk).exists()
    assert not any(storage.exists(name) for name in names)


def test_only_download_1_asks_for_an_attachment(ada, adas):
    conversation, _, _ = adas
    assert "Content-Disposition" not in ada.get(url(conversation, download=0))
