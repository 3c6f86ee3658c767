"""Request hygiene applied before any view."""

from django.http import JsonResponse

NUL_IN_URL_MESSAGE = "NUL characters are not allowed in URLs."


def reject_nul_bytes(get_response):
    """A NUL byte in the path or query string is a 400 here; PostgreSQL would refuse it later
    with an error that surfaces as a 500."""

    def middleware(request):
        if "\x00" in request.path or any(
            "\x00" in value for values in request.GET.lists() for value in values[1]
        ):
            return JsonResponse({"code": "invalid", "detail": NUL_IN_URL_MESSAGE}, status=400)
        return get_response(request)

    return middleware
