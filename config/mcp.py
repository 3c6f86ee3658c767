"""The MCP server: every tool the apps declare in their `mcp.py`, for the user behind a personal
API token. Served over streamable HTTP at /mcp/ (routed next to Django in config/asgi.py) and
over stdio (`manage.py mcp`, the token from the environment).

A tool call runs in a worker thread with its own database connection; the actor is looked up
on every call, so a revoked token stops working at once on both transports."""

import importlib
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections
from django.http.request import split_domain_port, validate_host
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse

from core.mcp import TOOLS, ToolResult, ToolSpec, error_payload
from rbac.authentication import INVALID_TOKEN_MESSAGE, user_for_token

logger = logging.getLogger(__name__)

SERVER_NAME = "settlements"
INSTRUCTIONS = (
    "Settlements and billing for IT service work. Tickets are named by key (MNX-12), settlements by "
    "number (ROZ-12) or id. You see and change only what your API token's user may; a refusal comes "
    "back as an error whose structured content has `code`, `detail` and `status`, as in the REST API."
)
# The apps whose `mcp.py` declares tools, in the order they are listed.
TOOL_MODULES = ("tickets.mcp", "settlements.mcp", "billing.mcp")
HTTP_PATH = "/mcp"

SERVER_ERROR_MESSAGE = "The server failed to carry out this tool; the failure was logged."
INVALID_ARGUMENTS_MESSAGE = "The arguments are invalid; see `errors`."
UNKNOWN_TOOL_MESSAGE = "There is no tool named {name!r}."
NUL_MESSAGE = "Arguments may not contain NUL characters."
# pydantic's error types, in the REST API's vocabulary where one exists.
ARGUMENT_CODES = {"missing": "required", "literal_error": "invalid_choice", "enum": "invalid_choice",
                  "extra_forbidden": "unknown_field"}

ActorLookup = Callable[[Context], Any]


# --- Results ------------------------------------------------------------------------------

def success_result(result: ToolResult) -> CallToolResult:
    """Structured content for programs; the summary and the same data as JSON text for clients
    that show the model only text blocks."""
    shown = {key: value for key, value in result.data.items() if key not in result.structured_only}
    text = json.dumps(shown, ensure_ascii=False)
    return CallToolResult(content=[TextContent(text=result.summary), TextContent(text=text)],
                          structured_content=result.data)


def error_result(payload: dict[str, Any]) -> CallToolResult:
    text = f"{payload['detail']} (code: {payload['code']}, status: {payload['status']})"
    return CallToolResult(content=[TextContent(text=text)], structured_content=payload, is_error=True)


def arguments_error(exc: ValidationError) -> dict[str, Any]:
    errors: dict[str, list[dict[str, str]]] = {}
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "non_field_errors"
        errors.setdefault(name, []).append({"message": error["msg"],
                                            "code": ARGUMENT_CODES.get(error["type"], "invalid")})
    first_name, first = next(iter(errors.items()))
    detail = f"{first_name}: {first[0]['message']}" if len(errors) == 1 else INVALID_ARGUMENTS_MESSAGE
    return {"code": first[0]["code"], "detail": detail, "errors": errors, "status": 400}


# --- Tools --------------------------------------------------------------------------------

def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple)):
        return any(_has_nul(item) for item in value)
    return False


def _call(spec: ToolSpec, lookup_actor: ActorLookup, ctx: Context, arguments: dict[str, Any], *,
          own_connection: bool = True) -> CallToolResult:
    try:
        if any(_has_nul(value) for value in arguments.values()):
            # As the REST API's middleware does: PostgreSQL cannot store or compare them.
            return error_result({"code": "null_character", "detail": NUL_MESSAGE, "status": 400})
        actor = lookup_actor(ctx)
        if actor is None:
            return error_result({"code": "invalid_token", "detail": INVALID_TOKEN_MESSAGE, "status": 401})
        return success_result(spec.function(actor=actor, **arguments))
    except Exception as exc:
        payload = error_payload(exc)
        if payload is None:
            raise
        return error_result(payload)
    finally:
        if own_connection:
            # The SDK's worker threads live on; a connection kept per idle thread would add up.
            connections.close_all()


def _mcp_function(spec: ToolSpec, lookup_actor: ActorLookup, *, inline: bool) -> Callable[..., Any]:
    """The tool as the SDK sees it: the declared parameters without `actor`, plus the request
    context, from which the actor is looked up on every call. Served tools run in the SDK's worker
    threads, each with its own database connection; `inline` tools run on the caller's thread and
    connection (in-process use: tests inside a transaction, scripts)."""
    signature = inspect.signature(spec.function, eval_str=True)
    parameters = [parameter for name, parameter in signature.parameters.items() if name != "actor"]
    context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)

    if inline:
        # Under a running event loop Django keeps a separate connection per task, so hand the
        # tool the connection of the code that built the server.
        connection = connections[DEFAULT_DB_ALIAS]

        async def call(ctx: Context, **arguments) -> CallToolResult:
            connections[DEFAULT_DB_ALIAS] = connection
            return _call(spec, lookup_actor, ctx, arguments, own_connection=False)
    else:
        def call(ctx: Context, **arguments) -> CallToolResult:
            return _call(spec, lookup_actor, ctx, arguments)

    call.__name__ = spec.name
    call.__doc__ = spec.description
    call.__signature__ = signature.replace(parameters=[*parameters, context], return_annotation=CallToolResult)
    call.__annotations__ = {**{p.name: p.annotation for p in parameters}, "ctx": Context, "return": CallToolResult}
    return call


class ProductMCPServer(MCPServer):
    """Every failure is a tool error with a code: bad arguments (400 with per-field errors), an
    unknown tool (404) and a crash (500, logged here, details kept on the server)."""

    async def call_tool(self, name, arguments, context=None):
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            logger.exception("MCP tool %s failed", name)
            return error_result({"code": "server_error", "detail": SERVER_ERROR_MESSAGE, "status": 500})
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                return error_result(arguments_error(exc.__cause__))
            if self._tool_manager.get_tool(name) is None:
                return error_result({"code": "unknown_tool", "detail": UNKNOWN_TOOL_MESSAGE.format(name=name),
                                     "status": 404})
            raise


def load_tools() -> dict[str, ToolSpec]:
    for module in TOOL_MODULES:
        importlib.import_module(module)
    return TOOLS


def build_server(lookup_actor: ActorLookup, *, inline: bool = False, **options) -> ProductMCPServer:
    server = ProductMCPServer(SERVER_NAME, instructions=INSTRUCTIONS, log_level="WARNING", **options)
    for spec in load_tools().values():
        annotations = ToolAnnotations(read_only_hint=spec.read_only, destructive_hint=spec.destructive,
                                      open_world_hint=False)
        server.add_tool(_mcp_function(spec, lookup_actor, inline=inline), name=spec.name, description=spec.description,
                        annotations=annotations, structured_output=False)
    return server


# --- Streamable HTTP ----------------------------------------------------------------------

def _token_principal(plain: str) -> AccessToken | None:
    try:
        user, token = user_for_token(plain)
    finally:
        connections.close_all()
    if user is None:
        return None
    expires = int(token.expires_at.timestamp()) if token.expires_at else None
    # client_id names the token: an HTTP session may only be used with the token that opened it.
    return AccessToken(token=plain, client_id=f"api-token-{token.pk}", subject=str(user.pk), scopes=[],
                       expires_at=expires)


class ApiTokenVerifier:
    """`Authorization: Bearer <personal API token>`, checked on every HTTP request."""

    async def verify_token(self, token: str) -> AccessToken | None:
        return await sync_to_async(_token_principal, thread_sensitive=False)(token)


def http_actor(ctx: Context):
    request = ctx.request_context.request
    user = getattr(request, "scope", {}).get("user")
    if not isinstance(user, AuthenticatedUser) or not user.access_token.subject:
        return None
    return get_user_model().objects.filter(pk=int(user.access_token.subject), is_active=True).first()


def _host_allowed(host: str) -> bool:
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.MCP_ALLOWED_HOSTS)


def _origin_allowed(origin: str) -> bool:
    return origin in settings.CSRF_TRUSTED_ORIGINS or _host_allowed(urlsplit(origin).netloc)


def host_guard(app):
    """DNS-rebinding protection with Django's host patterns (`MCP_ALLOWED_HOSTS`, `.example.com`
    and `*` included): another Host header is answered 421, a foreign Origin 403."""

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            if not _host_allowed(headers.get("host", "")):
                return await PlainTextResponse("Invalid Host header", status_code=421)(scope, receive, send)
            origin = headers.get("origin")
            if origin and not _origin_allowed(origin):
                return await PlainTextResponse("Invalid Origin header", status_code=403)(scope, receive, send)
        return await app(scope, receive, send)

    return guarded


def request_body_limit() -> int:
    """Room for one attachment well above the MCP cap in base64 (line breaks and JSON escapes
    included), so the tool itself refuses one that is too large, naming the REST route."""
    encoded = (settings.MCP_ATTACHMENT_MAX_BYTES + 2) // 3 * 4
    return encoded * 3 // 2 + 1024 * 1024


def http_app():
    """The Starlette app serving POST /mcp. Stateless (no server-side session), so any web
    process can answer any request; JSON responses, since the tools never stream."""
    # The issuer is required by the SDK's settings but unused: no OAuth routes are served.
    auth = AuthSettings(issuer_url="http://localhost", resource_server_url=None)
    server = build_server(http_actor, auth=auth, token_verifier=ApiTokenVerifier())
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, stateless_http=True, json_response=True,
                                     max_request_body_size=request_body_limit(),
                                     transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    return host_guard(app)


# --- stdio --------------------------------------------------------------------------------

def stdio_actor(plain: str) -> ActorLookup:
    def lookup(ctx: Context):
        return user_for_token(plain)[0]

    return lookup


def serve_stdio(plain: str) -> None:
    build_server(stdio_actor(plain)).run("stdio")
