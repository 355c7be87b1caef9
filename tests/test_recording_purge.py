"""Recordings past the retention period are deleted with their files; transcripts and newer recordings stay."""
from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, RecordingChunk, Turn

pytestmark = pytest.mark.django_db(transaction=True)


def _recorded(user, *, age_days: float, chunks: int = 2) -> Conversation:
    conversation = Conversation.objects.create(user=user, provider="azure", deployment="gpt-realtime", dialect="ga")
    Turn.objects.create(conversation=conversation, role="user", position=0, item_id="u1", text="hello",
                        recording_ms=0)
    for seq in range(chunks):
        services.recording_chunk_add(conversation_id=conversation.pk, seq=seq, data=b"\xff\xf3" + bytes(100),
                                     start_ms=seq * 1000, duration_ms=1000)
    RecordingChunk.objects.filter(conversation=conversation).update(
        created_at=timezone.now() - datetime.timedelta(days=age_days))
    return conversation


def _purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_recordings", *args, stdout=out)
    return out.getvalue()


def test_recordings_older_than_the_retention_period_go_and_their_transcripts_stay(user, settings):
    settings.RECORDING_RETENTION_DAYS = 30
    old = _recorded(user, age_days=31)
    new = _recorded(user, age_days=29)
    old_files = [(c.file.storage, c.file.name) for c in RecordingChunk.objects.filter(conversation=old)]
    assert all(storage.exists(name) for storage, name in old_files)

    assert "Deleted the recordings of 1 conversation older than 30 days" in _purge()

    assert not RecordingChunk.objects.filter(conversation=old).exists()
    assert not any(storage.exists(name) for storage, name in old_files)
    assert Turn.objects.get(conversation=old).text == "hello"
    assert Turn.objects.get(conversation=old).recording_ms is None  # nothing to seek in any more
    assert RecordingChunk.objects.filter(conversation=new).count() == 2
    assert Turn.objects.get(conversation=new).recording_ms == 0


def test_a_recording_continued_recently_is_kept_whole(user, settings):
    conversation = _recorded(user, age_days=40)
    services.recording_chunk_add(conversation_id=conversation.pk, seq=2, data=b"\xff\xf3" + bytes(100),
                                 start_ms=2000, duration_ms=1000)
    _purge("--days", "30")
    assert RecordingChunk.objects.filter(conversation=conversation).count() == 3


def test_a_retention_of_zero_keeps_everything(user, settings):
    settings.RECORDING_RETENTION_DAYS = 0
    _recorded(user, age_days=4000)
    assert "nothing to do" in _purge()
    assert RecordingChunk.objects.count() == 2


def test_a_negative_retention_is_refused(user):
    with pytest.raises(CommandError, match="0 .keep everything. or more"):
        _purge("--days", "-1")
