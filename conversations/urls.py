"""URL routes of the conversations app."""
from django.urls import path

from . import views, views_recording, views_staff, views_transfer, views_usage

app_name = "conversations"

urlpatterns = [
    path("", views.talk, name="talk"),
    path("history/", views.history, name="history"),
    # A malformed id matches no route: a 404 like anyone else's conversation.
    path("history/<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("history/<uuid:conversation_id>/rename/", views.conversation_rename, name="conversation_rename"),
    path("history/<uuid:conversation_id>/delete/", views.conversation_delete, name="conversation_delete"),
    # Recordings are private: served by a view that checks the owner, never from MEDIA_URL.
    path("history/<uuid:conversation_id>/recording.mp3", views_recording.recording, name="recording"),
    path("settings/", views.preferences, name="settings"),
    path("settings/delete-my-data/", views.delete_my_data, name="delete_my_data"),
    path("check/", views.check, name="check"),
    # Export and import (views_transfer.py); the history pages themselves live in views.py.
    path("history/<uuid:conversation_id>/export.json", views_transfer.export_json, name="export_json"),
    path("history/<uuid:conversation_id>/export.md", views_transfer.export_markdown, name="export_md"),
    path("history/export-all.zip", views_transfer.export_all, name="export_all"),
    path("history/import/", views_transfer.import_conversations, name="import"),
    # Usage (views_usage.py): each user's own month, and the staff dashboard with its CSV and drill-down.
    path("account/usage/", views_usage.my_usage, name="my_usage"),
    path("staff/usage/", views_usage.dashboard, name="staff_usage"),
    path("staff/usage.csv", views_usage.dashboard_csv, name="staff_usage_csv"),
    path("staff/usage/users/<int:user_id>/", views_usage.user_conversations, name="staff_usage_user"),
    path("staff/usage/conversations/<uuid:conversation_id>/", views_usage.conversation_transcript,
         name="staff_usage_conversation"),
    # Staff only (views_staff.py): every worker's live conversations, and ending one.
    path("staff/live/", views_staff.live_sessions, name="live"),
    path("staff/live.json", views_staff.live_sessions_json, name="live_json"),
    path("staff/live/<uuid:conversation_id>/end/", views_staff.live_end, name="live_end"),
]
