"""DRF authentication with personal API tokens: `Authorization: Bearer <token>`."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core.throttling import TOO_MANY_FAILURES_CODE, TOO_MANY_FAILURES_MESSAGE, api_token_failures

from .models import ApiToken
from .tokens import token_digest

INVALID_TOKEN_MESSAGE = "Invalid, expired or revoked API token."
MALFORMED_HEADER_MESSAGE = "Malformed Authorization header; use 'Bearer <token>'."
# Recording every use would turn each read into a write; once a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def user_for_token(plain: str):
    """The active user owning an active token, or None. Shared by the API and the MCP server."""
    token = ApiToken.objects.active().select_related("user").filter(digest=token_digest(plain)).first()
    if token is None or not token.user.is_active:
        return None, None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


def _throttled(verdict) -> exceptions.Throttled:
    return exceptions.Throttled(verdict.retry_after, detail=TOO_MANY_FAILURES_MESSAGE, code=TOO_MANY_FAILURES_CODE)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(MALFORMED_HEADER_MESSAGE, code="invalid_token")
        try:
            plain = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(MALFORMED_HEADER_MESSAGE, code="invalid_token") from None
        # Brute-force protection: a client past the limit of failed tokens gets 429 for every
        # token (a right guess must look no different), other clients are unaffected.
        if (verdict := api_token_failures.check(request)).blocked:
            raise _throttled(verdict)
        user, token = user_for_token(plain)
        if user is None:
            if (verdict := api_token_failures.fail(request)).blocked:
                raise _throttled(verdict)
            raise exceptions.AuthenticationFailed(INVALID_TOKEN_MESSAGE, code="invalid_token")
        return user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "rbac.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Personal API token."}
