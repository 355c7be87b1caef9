"""URL routes of the conversations app."""
from django.urls import path

from . import views

app_name = "conversations"

urlpatterns = [
    path("", views.talk, name="talk"),
    path("settings/", views.preferences, name="settings"),
    path("check/", views.check, name="check"),
]
