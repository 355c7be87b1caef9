"""HTTP views: talk, history, settings, the pre-flight check and sign-up. All require login unless marked."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import selectors, services
from .forms import DeleteAllDataForm, HistoryFilterForm, PreferencesForm, RenameForm
from .models import Conversation
from .realtime import options
from .tools.selectors import tool_choices
from .upstream import configured_dialect, transcription_models


def talk(request: HttpRequest) -> HttpResponse:
    """The page where the user holds a spoken conversation; `?conversation=ID` shows a stored one to continue."""
    conversation = None
    turns: list = []
    requested = request.GET.get("conversation", "")
    if requested:
        conversation = selectors.conversation_for(user=request.user, conversation_id=requested)
        if conversation is None:
            # Someone else's conversation and a malformed id look the same: not found.
            raise Http404("No such conversation.")
        # What was said, and the tools the assistant used, in order (drawn as the page's tool lines).
        turns = selectors.turns_of(conversation=conversation)
    prefs = selectors.preferences_for(user=request.user)
    context = {
        "ws_path": "/ws/talk/",
        "conversation": conversation,
        "conversation_id": str(conversation.pk) if conversation else "",
        "turns": turns,
        "settings_form": PreferencesForm.for_preferences(
            prefs, dialect=configured_dialect(), transcription_models=transcription_models(), tools=tool_choices()
        ),
        "presets": options.PRESETS,
    }
    return render(request, "conversations/talk.html", context)


HISTORY_PAGE_SIZE = 20


@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """The user's conversations, newest first; `?q=` searches them, `?from=`/`?to=` narrow them to dates."""
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "conversations/history.html", {"form": form}, status=400)
    q = form.cleaned_data["q"]
    conversations = selectors.conversation_list(
        user=request.user, q=q, started_from=form.cleaned_data["from"], started_to=form.cleaned_data["to"]
    )
    page = Paginator(conversations, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "rows": selectors.history_rows(conversations=page.object_list, q=q),
        "q": q,
        "filtering": form.filtering,
        # Only worth a query when nothing matched: tells "no conversations yet" from "no match".
        "has_conversations": bool(page.object_list) or selectors.conversation_exists_for(user=request.user),
    }
    return render(request, "conversations/history.html", context)


def _own_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> Conversation:
    """The requesting user's conversation, or a 404 that looks the same for anyone else's and for none."""
    conversation = selectors.conversation_for(user=request.user, conversation_id=conversation_id)
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _conversation_page(
    request: HttpRequest, conversation: Conversation, rename_form: RenameForm | None = None, status: int = 200
) -> HttpResponse:
    """Render a conversation's page, with a rename form that may carry errors."""
    context = {
        "conversation": conversation,
        "transcript": selectors.transcript_of(conversation=conversation),
        "recording": selectors.recording_of(conversation=conversation),
        "rename_form": rename_form or RenameForm(initial={"title": conversation.title}),
    }
    return render(request, "conversations/conversation.html", context, status=status)


@require_GET
def conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """One conversation's transcript with times, heard shares and tokens, and what can be done with it."""
    return _conversation_page(request, _own_conversation(request, conversation_id))


@require_POST
def conversation_rename(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Give a conversation a new title."""
    conversation = _own_conversation(request, conversation_id)
    form = RenameForm(request.POST)
    if not form.is_valid():
        return _conversation_page(request, conversation, rename_form=form, status=400)
    services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
    messages.success(request, _("Renamed."))
    return redirect("conversations:conversation", conversation_id=conversation.pk)


@require_http_methods(["GET", "POST"])
def conversation_delete(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """Ask before deleting a conversation (GET); delete it (POST)."""
    conversation = _own_conversation(request, conversation_id)
    if request.method == "GET":
        context = {"conversation": conversation,
                   "has_recording": selectors.recording_exists(conversation=conversation)}
        return render(request, "conversations/conversation_delete.html", context)
    services.conversation_delete(conversation=conversation)
    messages.success(request, _("The conversation was deleted."))
    return redirect("conversations:history")


@require_http_methods(["GET", "POST"])
def delete_my_data(request: HttpRequest) -> HttpResponse:
    """Ask for confirmation (GET), then delete all the user's conversations and settings (POST)."""
    form = DeleteAllDataForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        count = services.user_data_delete(user=request.user)
        messages.success(request, ngettext("%(count)d conversation and your settings were deleted.",
                                           "%(count)d conversations and your settings were deleted.", count)
                         % {"count": count})
        return redirect("conversations:history")
    status = 400 if request.method == "POST" else 200
    return render(request, "conversations/delete_my_data.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """Show and save the user's conversation settings; answers JSON to the talk page's panel."""
    current = selectors.preferences_for(user=request.user)
    dialect, models, tools = configured_dialect(), transcription_models(), tool_choices()
    wants_json = "application/json" in request.headers.get("Accept", "")
    if request.method == "GET":
        form = PreferencesForm.for_preferences(current, dialect=dialect, transcription_models=models, tools=tools)
        return render(request, "conversations/settings.html", {"form": form, "presets": options.PRESETS})
    form = PreferencesForm(request.POST, dialect=dialect, transcription_models=models, tools=tools)
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"ok": False, "errors": form.error_dict()}, status=400)
        return render(request, "conversations/settings.html", {"form": form, "presets": options.PRESETS}, status=400)
    prefs = form.to_preferences(current)
    services.preferences_update(user=request.user, preferences=prefs)
    if wants_json:
        config = options.build_session_config(prefs, dialect)
        return JsonResponse({"ok": True, "settings": options.browser_settings(config)})
    messages.success(request, _("Settings saved. They apply to your next conversation."))
    return redirect("conversations:settings")


def check(request: HttpRequest) -> HttpResponse:
    """The pre-flight check of microphone, audio path and connection."""
    return render(request, "conversations/check.html", {"ws_check_path": "/ws/check/"})


@login_not_required
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and log in, when SIGNUP_ENABLED is on."""
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is turned off.")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("conversations:talk")
    return render(request, "registration/signup.html", {"form": form})
