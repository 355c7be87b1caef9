"""ASGI entry point: HTTP through Django, WebSockets through the Channels router."""
import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
# Initialise Django before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from conversations.relay.lifespan import lifespan  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402
from voiceapp.origins import SameOriginValidator  # noqa: E402
from voiceapp.websocket_auth import WebSocketAuthMiddlewareStack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Same scheme, host and port as the page (or CSRF_TRUSTED_ORIGINS), checked before auth or routing.
        "websocket": SameOriginValidator(WebSocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        # A server that stops (SIGTERM) ends the conversations it holds: everything said and recorded is stored.
        "lifespan": lifespan,
    }
)

# Everything built so far (Django, the URL conf, the app) lives as long as the process: move it out of
# the collector's sight so full collections scan only what conversations allocate (see make bench).
gc.collect()
gc.freeze()

