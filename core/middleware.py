"""Request hygiene applied before any view, and the answers htmx requests get when something
outside the views (login, CSRF, a plain 404) refuses them."""

import logging
import secrets
from functools import wraps

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render, resolve_url

logger = logging.getLogger(__name__)

NUL_IN_URL_MESSAGE = "NUL characters are not allowed in URLs."
NUL_IN_FORM_MESSAGE = "NUL characters are not allowed in form fields."
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# Statuses Django answers by itself (CSRF failure, Http404, a wrong method). Other 4xx answers
# of htmx requests are our views' own fragments (a form with its errors) and are swapped as sent.
DJANGO_REFUSALS = {403, 404, 405}


def _has_nul(query_dict) -> bool:
    return any("\x00" in value for _, values in query_dict.lists() for value in values)


def reject_nul_bytes(get_response):
    """A NUL byte in the path, the query string or a url-encoded form is a 400 here; PostgreSQL
    would refuse it later with an error that surfaces as a 500 (possibly after other writes).
    Multipart bodies are left alone: reading them here would defeat streamed uploads, and the
    forms that read them validate NULs themselves."""

    def middleware(request):
        if "\x00" in request.path or _has_nul(request.GET):
            return JsonResponse({"code": "invalid", "detail": NUL_IN_URL_MESSAGE}, status=400)
        if request.method == "POST" and request.content_type == FORM_CONTENT_TYPE and _has_nul(request.POST):
            return JsonResponse({"code": "invalid", "detail": NUL_IN_FORM_MESSAGE}, status=400)
        return get_response(request)

    return middleware


def htmx_refusals(get_response):
    """htmx swaps 4xx answers into the element that asked. Refusals from our views are already
    fragments aimed at `#messages`, and forms with errors are meant to replace the form; but
    Django's own 403/404/405/5xx pages (CSRF failure, Http404) and a login redirect after the
    session expired would put a whole page into a table cell. Those become a short message in
    `#messages`, and the login redirect a full-page redirect."""

    def middleware(request):
        response = get_response(request)
        if not getattr(request, "htmx", False) or response.has_header("HX-Retarget"):
            return response
        if response.status_code in (301, 302) and response["Location"].startswith(resolve_url(settings.LOGIN_URL)):
            redirect = HttpResponse(status=204)
            redirect["HX-Redirect"] = response["Location"]
            return redirect
        if (response.status_code in DJANGO_REFUSALS or response.status_code >= 500) and not response.streaming:
            message = render(request, "dashboard/partials/http_error.html", {"status": response.status_code},
                             status=response.status_code)
            message["HX-Retarget"], message["HX-Reswap"] = "#messages", "innerHTML"
            return message
        return response

    return middleware


REQUEST_TOO_LARGE_CODE = "request_too_large"
REQUEST_TOO_LARGE_MESSAGE = "The request body is larger than the {limit} KB accepted here; nothing was saved."


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def limit_request_size(get_response):
    """A body other than a file upload (JSON, a url-encoded form) longer than
    DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 with a code before anything reads it. Django checks that
    limit only when `request.body` or `request.POST` is read (a plain 400), and DRF's parsers read
    the stream without checking it at all, so a huge JSON body would be held in memory whole.
    Multipart uploads have the file limit of core.uploads instead."""

    def middleware(request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if (limit is not None and not request.content_type.startswith("multipart/")
                and _declared_length(request) > limit):
            return JsonResponse(body_too_large_payload(), status=413)
        return get_response(request)

    return middleware


def body_too_large_payload() -> dict:
    """The 413 of a non-file body past DATA_UPLOAD_MAX_MEMORY_SIZE, wherever it is noticed: here
    (a Content-Length), in core.uploads (a streamed body under ASGI) or in Django's parser
    (core.api.exceptions.bad_request)."""
    limit = (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) // 1024
    return {"code": REQUEST_TOO_LARGE_CODE, "detail": REQUEST_TOO_LARGE_MESSAGE.format(limit=limit)}


# Pages load only our own static files (htmx is vendored, no CDN); an inline <script> or <style>
# runs only with the request's nonce (`request.csp_nonce`), and style="" attributes not at all.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; frame-src 'self'; "
    "frame-ancestors {ancestors}; base-uri 'self'; form-action 'self'"
)
# Files (attachment downloads and previews, exports): only who may frame them. Fetch directives
# on a PDF can stop the browser's own viewer, and `nosniff` keeps the file from running as a page.
FILE_CONTENT_SECURITY_POLICY = "frame-ancestors {ancestors}"


def content_security_policy(get_response):
    """A Content-Security-Policy on every answer that does not set its own (the customer page
    and the API docs do). frame-ancestors follows X-Frame-Options: 'none' unless the view allowed
    same-origin framing (the PDF preview), so it must sit outside XFrameOptionsMiddleware."""

    def middleware(request):
        request.csp_nonce = secrets.token_urlsafe(16)
        response = get_response(request)
        if response.has_header("Content-Security-Policy"):
            return response
        ancestors = "'self'" if response.get("X-Frame-Options", "").upper() == "SAMEORIGIN" else "'none'"
        policy = FILE_CONTENT_SECURITY_POLICY if response.has_header("Content-Disposition") else CONTENT_SECURITY_POLICY
        response["Content-Security-Policy"] = policy.format(nonce=request.csp_nonce, ancestors=ancestors)
        return response

    return middleware


def with_content_security_policy(policy: str):
    """Give one view its own policy (content_security_policy leaves it alone)."""

    def decorate(view):
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            response["Content-Security-Policy"] = policy
            return response

        return wraps(view)(wrapped)

    return decorate


DATABASE_UNAVAILABLE_CODE = "database_unavailable"
DATABASE_UNAVAILABLE_MESSAGE = ("The database could not complete the request (connection lost or a lock conflict). "
                                "It was most likely not saved; check before repeating a create, then try again.")
DATABASE_RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware:
    """A lost database connection (a restart or failover while the request ran, a lock or
    statement timeout, a deadlock) is a 503 with a code and Retry-After, not a 500: it is
    transient and the request's transaction was rolled back, unless the connection died during
    its COMMIT, when the outcome is unknown (the message says so). Connections are
    checked before the next request reuses them (CONN_HEALTH_CHECKS), so the app recovers by
    itself. Constraint and programming errors are not OperationalError and stay 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.db import InterfaceError, OperationalError

        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        # The answer hides it from the client; the log must not (deadlocks, timeouts, a missing
        # table after a skipped migration on SQLite all land here).
        logger.warning("Database unavailable for %s %s", request.method, request.path, exc_info=exception)
        if request.path.startswith("/api/"):
            response = JsonResponse({"code": DATABASE_UNAVAILABLE_CODE, "detail": DATABASE_UNAVAILABLE_MESSAGE},
                                    status=503)
        else:
            response = render(request, "dashboard/partials/http_error.html", {"status": 503}, status=503)
            response["X-Error-Code"] = DATABASE_UNAVAILABLE_CODE
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
