"""WSGI entry point, for management tooling only: the app itself needs ASGI for WebSockets."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
application = get_wsgi_application()
