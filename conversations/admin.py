"""Admin pages for conversations, turns, usage and model prices."""
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from .models import Conversation, GroupLimits, ModelPrice, Turn, Usage, UserLimits


class UsageCost:
    """Shows a usage row's stored cost estimate, or "no price" when no price fitted its model."""

    @admin.display(description="cost (USD)", ordering="cost")
    def cost_usd(self, usage: Usage) -> str:
        return f"{usage.cost:.6f}" if usage.priced else "no price"


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


class UsageInline(UsageCost, RecordInline):
    model = Usage
    fields = ("response_id", "model", "status", "input_tokens", "output_tokens", "total_tokens", "cost_usd")
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
class UsageAdmin(UsageCost, admin.ModelAdmin):
    list_display = ("conversation", "model", "input_tokens", "output_tokens", "total_tokens", "cost_usd", "price",
                    "created_at")
    list_filter = ("model", "priced")
    list_select_related = ("conversation", "price")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # viewable, not editable


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """Prices apply to usage recorded after an edit; `manage.py reprice_usage` recomputes older usage."""

    list_display = ("model", "text_input", "cached_text_input", "text_output", "audio_input", "cached_audio_input",
                    "audio_output", "as_of", "updated_at")
    search_fields = ("model", "source")
    readonly_fields = ("updated_at",)


class UserLimitsInline(admin.StackedInline):
    """A user's own limits, on their page in the admin."""

    model = UserLimits
    can_delete = True
    extra = 0
    max_num = 1


class GroupLimitsInline(admin.StackedInline):
    """A group's limits, on its page in the admin."""

    model = GroupLimits
    extra = 0
    max_num = 1


# The user and group pages get the limits inline: the limits are edited where the people are.
User = get_user_model()
_user_admin = type(admin.site._registry.get(User, UserAdmin(User, admin.site)))
_group_admin = type(admin.site._registry.get(Group, GroupAdmin(Group, admin.site)))
for model, base, inline in ((User, _user_admin, UserLimitsInline), (Group, _group_admin, GroupLimitsInline)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, type(base.__name__, (base,), {"inlines": (*base.inlines, inline)}))
