"""One error format for the whole API: DRF's `detail` plus a machine-readable `code`, and for
validation errors an `errors` object mapping each field to `[{"message", "code"}]`."""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.errors import ServiceError

VALIDATION_FAILED_MESSAGE = "The request has invalid fields; see `errors`."


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
        return Response(exc.as_payload(), status=exc.status_code)
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
