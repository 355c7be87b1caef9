"""Admin pages for conversations, turns and usage."""
from django.contrib import admin

from .models import Conversation, Turn, Usage


class RecordInline(admin.TabularInline):
    """Turns and usage are records of what happened: shown, never added, edited or deleted by hand."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class TurnInline(RecordInline):
    model = Turn
    fields = ("position", "role", "text", "interrupted", "audio_ms", "generated_ms", "item_id")
    readonly_fields = fields
    ordering = ("position",)


class UsageInline(RecordInline):
    model = Usage
    fields = ("response_id", "model", "status", "input_tokens", "output_tokens", "total_tokens")
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "started_at", "status", "provider", "deployment", "dialect")
    list_filter = ("status", "ended_by", "provider", "dialect")
    search_fields = ("title", "user__username")
    inlines = [TurnInline, UsageInline]
    # Only the title is the user's to change; the rest records what happened.
    readonly_fields = ("id", "user", "started_at", "ended_at", "status", "provider", "deployment", "dialect",
                       "settings", "upstream_session_id", "error", "ended_by", "imported_from")

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Usage)
class UsageAdmin(admin.ModelAdmin):
    list_display = ("conversation", "model", "input_tokens", "output_tokens", "total_tokens", "created_at")
    list_filter = ("model",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # viewable, not editable
