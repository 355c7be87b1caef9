"""WebSocket URL routes."""
from django.urls import path

from .consumers import TalkConsumer

websocket_urlpatterns = [
    path("ws/talk/", TalkConsumer.as_asgi()),
]
