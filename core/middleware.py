"""Request hygiene applied before any view, and the answers htmx requests get when something
outside the views (login, CSRF, a plain 404) refuses them."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render, resolve_url

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
