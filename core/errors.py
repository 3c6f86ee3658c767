"""Errors raised by services. Each carries an HTTP status and a machine-readable code, so every
interface (REST, admin, dashboard, MCP) reports the same refusal the same way."""

from typing import Any


class ServiceError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None,
                 errors: dict[str, Any] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        if status_code is not None:
            self.status_code = status_code
        self.errors = errors
        self.extra = extra or {}

    def as_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"code": self.code, "detail": self.message}
        if self.errors:
            payload["errors"] = self.errors
        payload.update(self.extra)
        return payload


class InvalidInput(ServiceError):
    """400: the request itself is wrong; `errors` maps field names to messages."""

    @classmethod
    def for_field(cls, field: str, message: str, *, code: str = "invalid") -> "InvalidInput":
        return cls(message, code=code, errors={field: [{"message": message, "code": code}]})


class NotFound(ServiceError):
    """404: missing, or invisible to the actor (the two are indistinguishable on purpose)."""

    status_code = 404
    default_code = "not_found"


class PermissionDenied(ServiceError):
    """403: the actor can see the object but may not do this to it."""

    status_code = 403
    default_code = "permission_denied"


class Conflict(ServiceError):
    """409: the request is valid but the current state of the data forbids it."""

    status_code = 409
    default_code = "conflict"


class EditBlocked(ServiceError):
    """Refusal from an edit guard (frozen ticket, billing lock); the guard sets status and code."""

    status_code = 403
    default_code = "edit_blocked"


def validate_model(instance, *, exclude: list[str] | None = None) -> None:
    """Run a model's full_clean and raise InvalidInput with per-field errors (codes kept)."""
    from django.core.exceptions import ValidationError

    try:
        instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors = {
            field: [{"message": str(message), "code": error.code or "invalid"}
                    for error in error_list for message in error.messages]
            for field, error_list in exc.error_dict.items()
        }
        first = next(iter(errors.values()))[0]
        raise InvalidInput(first["message"], code=first["code"], errors=errors) from None
