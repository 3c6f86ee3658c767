"""The toolkit behind every app's `mcp.py`: declare a tool with `@mcp_tool`, receive the acting
user as `actor`, return a `ToolResult`. The tools stay thin: they validate with the REST API's
serializers and filter sets, call the same services and selectors, and answer with the same
payloads. A refusal becomes a tool error carrying the API's code, message and HTTP status
(`error_payload`). The server itself (auth, transports) is assembled in `config/mcp.py`."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import InvalidPage, Paginator
from django.http import Http404, QueryDict
from django_filters.utils import translate_validation
from pydantic import Field
from rest_framework import exceptions as drf
from rest_framework.renderers import JSONRenderer

from core.api.exceptions import validation_payload
from core.errors import NotFound, ServiceError

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
INVALID_PAGE_MESSAGE = "Invalid page."

# Argument types shared by the apps' tools; each becomes part of a tool's input schema.
Page = Annotated[int, Field(ge=1, description="Page number, from 1.")]
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE, description=f"Rows per page, at most {MAX_PAGE_SIZE}.")]
TicketRef = Annotated[int | str, Field(description="Ticket key (MNX-12) or id.")]
ProjectKeys = Annotated[list[str] | None, Field(description="Project keys, e.g. [\"MNX\", \"OPS\"].")]


def choice_of(choices) -> Any:
    """A `Literal` of a Django choices class's values, so the schema lists them."""
    return Literal[tuple(choices.values)]


@dataclass(frozen=True)
class ToolResult:
    """What a tool returns: the structured payload and a one-line summary a person can read.
    The payload is also sent as JSON text, for clients that show the model only text, except
    the keys in `structured_only` (file contents: they would flood the model's context)."""

    data: dict[str, Any]
    summary: str
    structured_only: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolSpec:
    name: str
    function: Callable[..., ToolResult]
    description: str
    read_only: bool
    destructive: bool
    module: str = field(compare=False, default="")


# Every declared tool, by name. The server registers them all; tests compare the names.
TOOLS: dict[str, ToolSpec] = {}


def mcp_tool(*, read_only: bool = False, destructive: bool = False) -> Callable:
    """Declare a tool. The function takes `actor` plus keyword arguments typed with `Annotated[...,
    Field(description=...)]` (they become the input schema); its docstring is the description."""

    def register(function: Callable[..., ToolResult]) -> Callable[..., ToolResult]:
        if function.__name__ in TOOLS and TOOLS[function.__name__].function is not function:
            raise ValueError(f"Two MCP tools are named {function.__name__!r}")
        description = " ".join((function.__doc__ or "").split())
        TOOLS[function.__name__] = ToolSpec(function.__name__, function, description, read_only, destructive,
                                            function.__module__)
        return function

    return register


# --- Payloads -----------------------------------------------------------------------------

class ActorRequest:
    """Stands in for the HTTP request in serializer and filter contexts: they only ask for `.user`."""

    def __init__(self, user):
        self.user = user


def serializer_context(actor, **extra) -> dict[str, Any]:
    return {"request": ActorRequest(actor), "actor": actor, **extra}


def jsonable(data: Any) -> Any:
    """Plain JSON types, exactly as the REST API renders them (decimals as strings, ISO dates)."""
    return json.loads(JSONRenderer().render(data))


def serialize(serializer_class, instance, *, actor, many: bool = False, **context) -> Any:
    return jsonable(serializer_class(instance, many=many, context=serializer_context(actor, **context)).data)


def validated(serializer_class, data: dict[str, Any], *, actor, instance=None, partial: bool = False) -> dict:
    """`data` as the REST serializer validates it; its refusal is the API's 400 with field codes."""
    serializer = serializer_class(instance, data=data, partial=partial, context=serializer_context(actor))
    if not serializer.is_valid():
        raise drf.ValidationError(serializer.errors)
    return serializer.validated_data


def given(**arguments) -> dict[str, Any]:
    """The arguments the caller actually gave (None means "not given")."""
    return {name: value for name, value in arguments.items() if value is not None}


def filtered(filterset_class, queryset, *, actor, **params):
    """Apply the REST list's filter set; lists become repeated parameters, as in a query string."""
    data = QueryDict(mutable=True)
    for name, value in given(**params).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        data.setlist(name, [str(item) for item in values])
    filterset = filterset_class(data=data, queryset=queryset, request=ActorRequest(actor))
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset.qs


def paginated(queryset, *, page: int, page_size: int) -> tuple[list, dict[str, Any]]:
    """One page of `queryset` and the paging facts an agent needs to ask for the next one."""
    paginator = Paginator(queryset, page_size)
    try:
        rows = paginator.page(page)
    except InvalidPage:
        raise NotFound(INVALID_PAGE_MESSAGE) from None
    return list(rows), {"count": paginator.count, "page": page, "page_size": page_size,
                        "pages": paginator.num_pages, "has_next": rows.has_next()}


# --- Errors -------------------------------------------------------------------------------

def error_payload(exc: Exception) -> dict[str, Any] | None:
    """The API's error body for `exc` plus its HTTP `status`; None for an unexpected exception."""
    if isinstance(exc, ServiceError):
        return {**exc.as_payload(), "status": exc.status_code}
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = drf.ValidationError(detail)
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, drf.ValidationError):
        return {**validation_payload(exc), "status": 400}
    if isinstance(exc, drf.APIException):
        code = getattr(exc.detail, "code", None) or exc.default_code
        return {"code": code, "detail": str(exc.detail), "status": exc.status_code}
    return None
