"""WebSocket URL routes."""
from django.urls import path

from .consumers import CheckConsumer, TalkConsumer

websocket_urlpatterns = [
    path("ws/talk/", TalkConsumer.as_asgi()),
    path("ws/check/", CheckConsumer.as_asgi()),
]
