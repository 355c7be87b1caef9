"""Conversations, their turns and the token usage of each response."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    """One spoken conversation of a user with a realtime model, across one or more upstream sessions."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    provider = models.CharField(max_length=16)
    deployment = models.CharField(max_length=100)
    dialect = models.CharField(max_length=16)
    settings = models.JSONField(default=dict, blank=True)
    upstream_session_id = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "-started_at"])]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.started_at:%Y-%m-%d %H:%M}"


class Turn(models.Model):
    """One item of a conversation: something the user or the assistant said (or typed)."""

    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    role = models.CharField(max_length=16, choices=Role.choices)
    # Order in the conversation, given when the upstream item was created: transcripts arrive later.
    position = models.PositiveIntegerField()
    item_id = models.CharField(max_length=128)
    response_id = models.CharField(max_length=128, blank=True)
    text = models.TextField(blank=True)
    interrupted = models.BooleanField(default=False)
    audio_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "item_id"], name="turn_unique_item"),
            models.UniqueConstraint(fields=["conversation", "position"], name="turn_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class Usage(models.Model):
    """Token usage reported by one `response.done`."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="usage")
    response_id = models.CharField(max_length=128)
    model = models.CharField(max_length=100)
    status = models.CharField(max_length=16, blank=True)
    input_text_tokens = models.PositiveIntegerField(default=0)
    input_audio_tokens = models.PositiveIntegerField(default=0)
    input_cached_tokens = models.PositiveIntegerField(default=0)
    output_text_tokens = models.PositiveIntegerField(default=0)
    output_audio_tokens = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "usage"
        constraints = [
            models.UniqueConstraint(fields=["conversation", "response_id"], name="usage_unique_response"),
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.total_tokens} tokens"
