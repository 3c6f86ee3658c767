"""Reusable OpenAPI fragments: the error body every endpoint can answer with, and the schema
class that documents the errors the framework itself gives on any operation."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "code": serializers.CharField(help_text="Machine-readable error code, e.g. `not_found`."),
        "detail": serializers.CharField(help_text="Human-readable message."),
        "errors": serializers.DictField(
            required=False,
            help_text="For validation errors: field name → list of {message, code}.",
        ),
    },
)


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


READ_ERRORS = {401: error("Not authenticated."), 404: error("Not found or not visible.")}
WRITE_ERRORS = {
    400: error("Invalid input."),
    401: error("Not authenticated."),
    403: error("Visible but not allowed."),
    404: error("Not found or not visible."),
    409: error("Conflicts with the current state."),
}


# Answers that do not depend on the view, only on the shape of the operation: a NUL byte in the
# URL or a malformed body (core.middleware, DRF's parsers), bad credentials, an unknown object or
# page, an oversized body (core.middleware.limit_request_size, core.uploads), a client throttled
# after failed tokens, a database gone for a moment.
FRAMEWORK_ERRORS = {
    "400": "Invalid input: a malformed body, an invalid parameter or filter (`invalid`, `parse_error`, ...).",
    "401": "Not authenticated (`not_authenticated`, `invalid_token`).",
    "404": "Not found or not visible (`not_found`), or a page past the end.",
    "413": "Request body too large (`request_too_large`, `file_too_large`); nothing was saved.",
    "429": "Too many failed attempts from this address (`too_many_failures`); see Retry-After.",
    "503": "The database could not complete the request for a moment (`database_unavailable`); retry "
           "after Retry-After.",
}


class ApiAutoSchema(AutoSchema):
    """Adds to every operation the error responses the framework can give it, unless the view
    documents them itself, so that the schema lists every status an operation may answer."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        locations = {parameter.get("in") for parameter in operation.get("parameters", [])}
        has_body = "requestBody" in operation
        applicable = {
            "400": has_body or bool(locations & {"path", "query"}),
            "401": bool(operation.get("security")),
            "404": "path" in locations or any(parameter.get("name") == "page"
                                              for parameter in operation.get("parameters", [])),
            "413": has_body,
            # Bearer tokens and share links are throttled after repeated failures (core.throttling),
            # the public share-link API by request rate too.
            "429": bool(operation.get("security")) or self.path.startswith("/api/public/"),
            "503": True,  # core.middleware.DatabaseUnavailableMiddleware
        }
        responses = operation.setdefault("responses", {})
        for code, description in FRAMEWORK_ERRORS.items():
            if applicable[code] and code not in responses:
                responses[code] = {**self._get_response_for_code(ErrorSerializer, code), "description": description}
        operation["responses"] = dict(sorted(responses.items()))
        return operation
