"""HTTP views: the talk page and sign-up. Every view requires login unless marked otherwise."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render


def talk(request: HttpRequest) -> HttpResponse:
    """The page where the user holds a spoken conversation."""
    return render(request, "conversations/talk.html", {"ws_path": "/ws/talk/", "conversation_id": ""})


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
