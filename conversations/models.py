"""Conversations, their turns and the token usage of each response."""
from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Conversation(models.Model):
    """One spoken conversation of a user with a realtime model, across one or more upstream sessions."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        FAILED = "failed", "Failed"

    class EndedBy(models.TextChoices):
        # The relay's ConversationEnded.ended_by values; empty while live, and for rows stored before this.
        USER = "user", "User"
        STAFF = "staff", "Staff"
        SYSTEM = "system", "System"
        # Its worker died (killed, crashed) while it was live: closed later by the sweep (conversations/sweep.py).
        INTERRUPTED = "interrupted", "Interrupted"

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
    ended_by = models.CharField(max_length=16, choices=EndedBy.choices, blank=True)
    # The id the conversation had in the export it was imported from: the same file twice is found by it.
    imported_from = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "-started_at"])]
        constraints = [
            # Also the index duplicate detection looks up; two imports racing cannot both write.
            models.UniqueConstraint(
                fields=["user", "imported_from"], condition=~models.Q(imported_from=""), name="conversation_unique_import"
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.started_at:%Y-%m-%d %H:%M}"


class Turn(models.Model):
    """One item of a conversation: something the user or the assistant said (or typed), or a tool the model called."""

    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"
        # A function call with its output, in one row: `text` stays empty, so the history search (and `recall`)
        # finds only what people said.
        TOOL = "tool", "Tool"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    role = models.CharField(max_length=16, choices=Role.choices)
    # Order in the conversation, given when the upstream item was created: transcripts arrive later.
    position = models.PositiveIntegerField()
    item_id = models.CharField(max_length=128)
    response_id = models.CharField(max_length=128, blank=True)
    text = models.TextField(blank=True)
    interrupted = models.BooleanField(default=False)
    # The audio's length; for an interrupted reply, the part the user heard before cutting it short.
    audio_ms = models.PositiveIntegerField(default=0)
    # For an interrupted reply: the audio the service had sent when it was cut, so the history page can
    # estimate how much of the text was heard. 0 when unknown (turns stored before this was recorded).
    generated_ms = models.PositiveIntegerField(default=0)
    # Empty when whole; "failed" or "incomplete" for a reply, "transcription_failed" for a user turn; for a tool
    # call "failed" (it gave the model an error), "cancelled" (the user moved on) or "interrupted" (the end came).
    status = models.CharField(max_length=24, blank=True)
    status_reason = models.CharField(max_length=200, blank=True)
    # Where the turn starts in the conversation's recording (ms); null when it was not recorded.
    recording_ms = models.PositiveIntegerField(null=True, blank=True)
    # Role "tool" only: the call as the model made it, what it gave the model (JSON text; empty while it runs,
    # or when its conversation was cut off), and what it did in plain words for people.
    tool_call_id = models.CharField(max_length=128, blank=True)
    tool_name = models.CharField(max_length=64, blank=True)
    tool_arguments = models.TextField(blank=True)
    tool_output = models.TextField(blank=True)
    tool_summary = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "item_id"], name="turn_unique_item"),
            models.UniqueConstraint(fields=["conversation", "position"], name="turn_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


def recordings_storage() -> Storage:
    """The storage recordings go to: STORAGES["recordings"] (a private folder under MEDIA_ROOT by default)."""
    return storages["recordings"]


def recording_chunk_name(instance: RecordingChunk, filename: str) -> str:
    """Chunks of one conversation sit together, in the order they play."""
    return f"{instance.conversation_id}/{instance.seq:06d}.mp3"


class RecordingChunk(models.Model):
    """A stretch of a conversation's recording: MP3 frames that play straight after the previous chunk's.

    A recording is written in chunks as the conversation goes, so a dropped socket or a stopped server
    loses at most the last few seconds; played back, the chunks of a conversation are one MP3 stream.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="recording_chunks")
    seq = models.PositiveIntegerField()
    file = models.FileField(storage=recordings_storage, upload_to=recording_chunk_name, max_length=255)
    # Where the chunk starts on the recording's timeline, and how long it plays (ms).
    start_ms = models.PositiveIntegerField()
    duration_ms = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [models.UniqueConstraint(fields=["conversation", "seq"], name="recording_chunk_unique_seq")]

    def __str__(self) -> str:
        return f"Recording chunk {self.seq} of {self.conversation_id}"


def _price_per_million(name: str) -> models.DecimalField:
    """A list price in USD per million tokens."""
    return models.DecimalField(name, max_digits=12, decimal_places=6, validators=[MinValueValidator(Decimal(0))])


class ModelPrice(models.Model):
    """The list prices of one realtime model, in USD per million tokens, that usage is costed at as it is recorded."""

    model = models.CharField(
        max_length=100, unique=True,
        help_text="The model name, e.g. gpt-realtime; it also prices the model's dated snapshots "
        "(gpt-realtime-2025-08-28).",
    )
    text_input = _price_per_million("text in")
    cached_text_input = _price_per_million("cached text in")
    text_output = _price_per_million("text out")
    audio_input = _price_per_million("audio in")
    cached_audio_input = _price_per_million("cached audio in")
    audio_output = _price_per_million("audio out")
    source = models.TextField(blank=True, help_text="Where the prices come from: a URL, a price sheet, a contract.")
    as_of = models.DateField(help_text="The day the prices were read from their source.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return self.model


class Usage(models.Model):
    """Token usage reported by one `response.done`, and what it cost at the prices of the day."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="usage")
    response_id = models.CharField(max_length=128)
    model = models.CharField(max_length=100)
    status = models.CharField(max_length=16, blank=True)
    input_text_tokens = models.PositiveIntegerField(default=0)
    input_audio_tokens = models.PositiveIntegerField(default=0)
    input_cached_tokens = models.PositiveIntegerField(default=0)
    # The cached tokens split into text and audio (as reported, or shared in proportion: realtime/protocol.py).
    input_cached_text_tokens = models.PositiveIntegerField(default=0)
    input_cached_audio_tokens = models.PositiveIntegerField(default=0)
    output_text_tokens = models.PositiveIntegerField(default=0)
    output_audio_tokens = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    # The service never reported this response's usage (the conversation ended mid-reply): counted from what was sent.
    estimated = models.BooleanField(default=False)
    # The estimated cost in USD at the price in force when it was recorded, stored so that editing a price
    # later does not rewrite history (`manage.py reprice_usage` does, deliberately).
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    # The price row used; null when none fitted (priced is false) or the row was deleted since.
    price = models.ForeignKey(ModelPrice, null=True, blank=True, on_delete=models.SET_NULL, related_name="usage")
    # False: no price was found for the model, and the cost of 0 means "unknown", not "free".
    priced = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "usage"
        constraints = [
            models.UniqueConstraint(fields=["conversation", "response_id"], name="usage_unique_response"),
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.total_tokens} tokens"


class VoicePreferences(models.Model):
    """How a user wants their conversations set up; limits live in realtime/options.py."""

    class TurnDetection(models.TextChoices):
        SERVER_VAD = "server_vad", _("Automatic (voice activity)")
        SEMANTIC_VAD = "semantic_vad", _("Automatic (semantic)")
        PUSH_TO_TALK = "push_to_talk", _("Push to talk")

    class NoiseReduction(models.TextChoices):
        NEAR_FIELD = "near_field", _("Headset (near field)")
        FAR_FIELD = "far_field", _("Speakerphone or laptop (far field)")
        OFF = "off", _("Off")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="voice_preferences")
    voice = models.CharField(max_length=32)
    instructions = models.TextField(blank=True)
    turn_detection = models.CharField(max_length=16, choices=TurnDetection.choices, default=TurnDetection.SERVER_VAD)
    vad_threshold = models.FloatField(default=0.5)
    silence_duration_ms = models.PositiveIntegerField(default=500)
    prefix_padding_ms = models.PositiveIntegerField(default=300)
    eagerness = models.CharField(max_length=8, default="auto")
    transcription_model = models.CharField(max_length=64, default="whisper-1")
    language = models.CharField(max_length=8, blank=True)
    noise_reduction = models.CharField(max_length=16, choices=NoiseReduction.choices, default=NoiseReduction.NEAR_FIELD)
    speed = models.FloatField(default=1.0)
    max_response_tokens = models.PositiveIntegerField(null=True, blank=True)
    temperature = models.FloatField(default=0.8)
    # Record conversations (both sides) so they can be played back from the history.
    record = models.BooleanField(default=True)
    # Names of the site's tools this user turned off: a new tool the site adds is on until they turn it off.
    tools_disabled = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "voice preferences"

    def __str__(self) -> str:
        return f"Voice preferences of {self.user}"


class LimitFields(models.Model):
    """Limits that override the ones above them: empty inherits, 0 is unlimited."""

    _INHERIT = "Empty: as above (the group's, else the site's setting); 0: unlimited."
    max_concurrent = models.PositiveIntegerField(
        "conversations at once", null=True, blank=True, help_text=_INHERIT)
    new_per_hour = models.PositiveIntegerField(
        "new conversations per hour", null=True, blank=True, help_text=_INHERIT)
    audio_minutes_per_day = models.DecimalField(
        "audio minutes per day", max_digits=9, decimal_places=2, null=True, blank=True, help_text=_INHERIT)
    cost_per_day_usd = models.DecimalField(
        "estimated cost per day (USD)", max_digits=12, decimal_places=2, null=True, blank=True, help_text=_INHERIT)
    cost_per_month_usd = models.DecimalField(
        "estimated cost per month (USD)", max_digits=12, decimal_places=2, null=True, blank=True, help_text=_INHERIT)
    max_conversation_minutes = models.DecimalField(
        "longest conversation (minutes)", max_digits=9, decimal_places=2, null=True, blank=True, help_text=_INHERIT)

    class Meta:
        abstract = True


class UserLimits(LimitFields):
    """One user's own limits, over their groups' and the site's."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_limits")

    class Meta:
        verbose_name = verbose_name_plural = "usage limits"

    def __str__(self) -> str:
        return f"Limits of {self.user}"


class GroupLimits(LimitFields):
    """A group's limits, over the site's; a user in several groups gets the most generous of each."""

    group = models.OneToOneField("auth.Group", on_delete=models.CASCADE, related_name="usage_limits")

    class Meta:
        verbose_name = verbose_name_plural = "usage limits"

    def __str__(self) -> str:
        return f"Limits of {self.group}"
