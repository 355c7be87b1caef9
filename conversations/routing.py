"""WebSocket URL routes."""
from django.urls import path

from .relay.check import CheckConsumer
from .relay.consumer import TalkConsumer

websocket_urlpatterns = [
    path("ws/talk/", TalkConsumer.as_asgi()),
    path("ws/check/", CheckConsumer.as_asgi()),
]
