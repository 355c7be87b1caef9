"""HTTP views: the talk page, settings, the pre-flight check and sign-up. All require login unless marked."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from . import selectors, services
from .forms import PreferencesForm
from .realtime import options
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
        turns = list(selectors.turns_of(conversation=conversation))
    prefs = selectors.preferences_for(user=request.user)
    context = {
        "ws_path": "/ws/talk/",
        "conversation": conversation,
        "conversation_id": str(conversation.pk) if conversation else "",
        "turns": turns,
        "settings_form": PreferencesForm.for_preferences(
            prefs, dialect=configured_dialect(), transcription_models=transcription_models()
        ),
        "presets": options.PRESETS,
    }
    return render(request, "conversations/talk.html", context)


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """Show and save the user's conversation settings; answers JSON to the talk page's panel."""
    current = selectors.preferences_for(user=request.user)
    dialect, models = configured_dialect(), transcription_models()
    wants_json = "application/json" in request.headers.get("Accept", "")
    if request.method == "GET":
        form = PreferencesForm.for_preferences(current, dialect=dialect, transcription_models=models)
        return render(request, "conversations/settings.html", {"form": form, "presets": options.PRESETS})
    form = PreferencesForm(request.POST, dialect=dialect, transcription_models=models)
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
