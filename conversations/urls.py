"""URL routes of the conversations app."""
from django.urls import path

from . import views

app_name = "conversations"

urlpatterns = [
    path("", views.talk, name="talk"),
    path("history/", views.history, name="history"),
    # A malformed id matches no route: a 404 like anyone else's conversation.
    path("history/<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("history/<uuid:conversation_id>/rename/", views.conversation_rename, name="conversation_rename"),
    path("history/<uuid:conversation_id>/delete/", views.conversation_delete, name="conversation_delete"),
    path("settings/", views.preferences, name="settings"),
    path("check/", views.check, name="check"),
]
