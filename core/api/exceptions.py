"""One error format for the whole API: DRF's `detail` plus a machine-readable `code`, and for
validation errors an `errors` object mapping each field to `[{"message", "code"}]`."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import ServiceError

VALIDATION_FAILED_MESSAGE = "The request has invalid fields; see `errors`."
NOT_FOUND_MESSAGE = "Not found."
TOO_MANY_FIELDS_MESSAGE = "The request has more fields or files than are accepted; nothing was saved."


def _field_details(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _field_details(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_field_details(item) for item in detail]
    return {"message": str(detail), "code": getattr(detail, "code", "invalid")}


def _first_code(details: Any) -> str | None:
    if isinstance(details, dict):
        if set(details) == {"message", "code"}:
            return details["code"]
        for value in details.values():
            found = _first_code(value)
            if found:
                return found
    if isinstance(details, list):
        for item in details:
            found = _first_code(item)
            if found:
                return found
    return None


def validation_payload(exc: exceptions.ValidationError) -> dict[str, Any]:
    detail = exc.detail
    if isinstance(detail, list):
        detail = {"non_field_errors": detail}
    elif not isinstance(detail, dict):
        detail = {"non_field_errors": [detail]}
    errors = _field_details(detail)
    code = _first_code(errors) if len(errors) == 1 else None
    message = VALIDATION_FAILED_MESSAGE
    only = next(iter(errors.values())) if len(errors) == 1 else None
    if isinstance(only, list) and len(only) == 1 and isinstance(only[0], dict) and "message" in only[0]:
        message = only[0]["message"]
    return {"code": code or "invalid", "detail": message, "errors": errors}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ServiceError):
        response = Response(exc.as_payload(), status=exc.status_code)
        if getattr(exc, "retry_after", None):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_payload(exc)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        response.data = {"code": code, "detail": str(detail)}
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            response.data["code"] = code if code != "authentication_failed" else "invalid_token"
    return response


def not_found(request, exception=None):
    """The project's handler404: under /api/ a URL no route matches (e.g. a malformed key in the
    path) answers like any other API 404, in JSON with a code; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "detail": NOT_FOUND_MESSAGE}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    """The project's handler400. A body Django refused while parsing it (a multipart form whose
    fields pass DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields) answers with a status and code like
    core.middleware.limit_request_size does, not Django's plain 400 page."""
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent

    from core.middleware import body_too_large_payload

    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(body_too_large_payload(), status=413)
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        return JsonResponse({"code": "too_many_fields", "detail": TOO_MANY_FIELDS_MESSAGE}, status=400)
    return defaults.bad_request(request, exception)
