"""Admin pages for conversations, turns and usage."""
from django.contrib import admin

from .models import Conversation, Turn, Usage


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    fields = ("position", "role", "text", "interrupted", "audio_ms", "generated_ms", "item_id")
    readonly_fields = fields
    ordering = ("position",)


class UsageInline(admin.TabularInline):
    model = Usage
    extra = 0
    fields = ("response_id", "model", "status", "input_tokens", "output_tokens", "total_tokens")
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "started_at", "status", "provider", "deployment", "dialect")
    list_filter = ("status", "provider", "dialect")
    search_fields = ("title", "user__username")
    inlines = [TurnInline, UsageInline]
    readonly_fields = ("id", "started_at", "ended_at", "upstream_session_id")


@admin.register(Usage)
class UsageAdmin(admin.ModelAdmin):
    list_display = ("conversation", "model", "input_tokens", "output_tokens", "total_tokens", "created_at")
    list_filter = ("model",)
