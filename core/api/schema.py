"""Reusable OpenAPI fragments: the error body every endpoint can answer with."""

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
