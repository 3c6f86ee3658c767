"""ASGI entry point: Django, with the MCP server's streamable HTTP endpoint at /mcp/ beside it.

Django's ASGI handler refuses `lifespan` events, and the MCP app needs its lifespan (it starts
the session manager), so lifespan goes to the MCP app and every HTTP path outside /mcp to Django.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after django.setup() above)

from config.mcp import HTTP_PATH, http_app  # noqa: E402
from core.throttling import throttle_failed_bearer_tokens  # noqa: E402
from core.uploads import limit_request_body  # noqa: E402

if settings.DEBUG:
    # What runserver does for WSGI: serve static files (the admin's CSS) in development.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_application = ASGIStaticFilesHandler(django_application)

django_application = limit_request_body(django_application)
# The MCP SDK checks Bearer tokens itself; failed ones count against the client's address as
# they do for the REST API (core.throttling).
mcp_application = throttle_failed_bearer_tokens(http_app())


def is_mcp_path(path: str) -> bool:
    return path == HTTP_PATH or path.startswith(HTTP_PATH + "/")


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await mcp_application(scope, receive, send)
    elif scope["type"] == "http" and is_mcp_path(scope["path"]):
        if scope["path"] == HTTP_PATH + "/":
            # /mcp/ and /mcp are the same endpoint (no redirect: clients must not lose a POST body).
            scope = {**scope, "path": HTTP_PATH, "raw_path": HTTP_PATH.encode()}
        await mcp_application(scope, receive, send)
    else:
        await django_application(scope, receive, send)
