"""Signal handlers: a logout ends the sockets opened with that login; a deleted recording chunk takes its file;
a suspended user's live conversations end."""
from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, pre_save
from django.dispatch import receiver

from . import services
from .models import RecordingChunk

from .relay.consumer import session_group

logger = logging.getLogger(__name__)


@receiver(user_logged_out)
def end_sockets_of_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Tell every talk socket of the session being logged out to end its conversation."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    layer = get_channel_layer()
    if not key or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(session_group(key), {"type": "session.ended"})
    except Exception:  # noqa: BLE001 - a logout must work even when the channel layer is down
        logger.exception("Could not tell the sockets of a logged-out session to close")


@receiver(post_delete, sender=RecordingChunk)
def delete_chunk_file(sender: Any, instance: RecordingChunk, **kwargs: Any) -> None:
    """Remove a chunk's file once its row is gone for good (also when a user or conversation cascade takes it)."""
    name, storage = instance.file.name, instance.file.storage
    if not name:
        return

    def remove() -> None:
        try:
            storage.delete(name)
        except Exception:  # noqa: BLE001 - a missing file or a storage outage must not undo the delete
            logger.exception("Could not delete the recording file %s", name)

    transaction.on_commit(remove)


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def end_conversations_of_suspended_user(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """A user being made inactive (in the admin or anywhere) loses their live conversations once that commits."""
    if instance.pk is None or instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    # One query, only for saves of an inactive user: was the user active until now?
    if sender._default_manager.filter(pk=instance.pk, is_active=True).exists():
        services.user_suspended(user_id=instance.pk)
