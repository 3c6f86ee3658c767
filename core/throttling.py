"""Brute-force protection: failed guesses of a secret (API tokens, share-link tokens) counted per
client address in the shared cache, and refused with 429 once a client has failed too often.

Only failures count, so a client using a valid secret is never slowed down; once over the limit,
though, every attempt of that client is refused until the window ends, valid or not (otherwise
the answer would still tell a right guess from a wrong one). Other clients are not affected.

Counting is a fixed window per client: `cache.add` creates the window's counter, `cache.incr`
bumps it; both are atomic in Redis (and in the local-memory cache within one process), so of any
number of concurrent failures exactly `limit` are answered normally and the rest 429. The client
is REMOTE_ADDR, which uvicorn's --proxy-headers sets from X-Forwarded-For of trusted proxies only;
the header itself is never read here (anyone can send one).

Limits are settings (`BRUTE_FORCE_LIMITS`, see docs/OPERATIONS.md "Brute-force protection").
"""

import json
import logging
import time
from dataclasses import dataclass

import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied

from core.errors import ServiceError

logger = logging.getLogger(__name__)
# What a cache backend raises when its server is gone (Redis; a socket error from others).
CACHE_ERRORS = (redis.RedisError, OSError)

TOO_MANY_FAILURES_CODE = "too_many_failures"
TOO_MANY_FAILURES_MESSAGE = "Too many failed attempts from your address."


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    retry_after: int

    @property
    def message(self) -> str:
        return f"{TOO_MANY_FAILURES_MESSAGE} Try again in {self.retry_after} seconds."


class TooManyFailures(ServiceError):
    """429 for a client over its limit; interfaces send `retry_after` as the Retry-After header."""

    status_code = 429
    default_code = TOO_MANY_FAILURES_CODE

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.message, extra={"retry_after": verdict.retry_after})
        self.retry_after = verdict.retry_after


def client_address(request) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


class FailureLimiter:
    """`scope` names a setting in BRUTE_FORCE_LIMITS: {"failures": n, "window": seconds}."""

    def __init__(self, scope: str):
        self.scope = scope

    def _limits(self) -> tuple[int, int]:
        limits = settings.BRUTE_FORCE_LIMITS[self.scope]
        return int(limits["failures"]), max(1, int(limits["window"]))

    def _window(self, client: str) -> tuple[str, int]:
        _, window = self._limits()
        now = time.time()
        key = f"brute-force:{self.scope}:{client}:{int(now // window)}"
        return key, max(1, int(window - now % window))

    def check(self, request) -> Verdict:
        """Before the secret is looked at: is this client already over the limit?"""
        return self.check_address(client_address(request))

    def fail(self, request) -> Verdict:
        """Count a failed attempt; blocked when it is one more than the limit allows (then the
        caller answers 429 instead of its usual refusal)."""
        return self.fail_address(client_address(request))

    def check_address(self, client: str) -> Verdict:
        failures, _ = self._limits()
        key, retry_after = self._window(client)
        try:
            count = cache.get(key) or 0
        except CACHE_ERRORS:
            return _unguarded(self.scope, retry_after)
        return Verdict(blocked=count >= failures, retry_after=retry_after)

    def fail_address(self, client: str) -> Verdict:
        try:
            return self._count_failure(client)
        except CACHE_ERRORS:
            return _unguarded(self.scope, 0)

    def _count_failure(self, client: str) -> Verdict:
        failures, window = self._limits()
        key, retry_after = self._window(client)
        # add() is a no-op when the counter exists; incr() is atomic. The counter outlives its
        # window a little so that a window's last second still finds it.
        cache.add(key, 0, timeout=window + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=window + 1)
            count = 1
        return Verdict(blocked=count > failures, retry_after=retry_after)


def _unguarded(scope: str, retry_after: int) -> Verdict:
    """The cache (Redis) is down: let the attempt through rather than refuse every token and
    share link; the secrets are long random strings, so a few minutes unguarded cost little."""
    logger.warning("Brute-force counter %s unavailable (cache down); attempt not counted", scope)
    return Verdict(blocked=False, retry_after=retry_after)


api_token_failures = FailureLimiter("api_token")
share_link_failures = FailureLimiter("share_link")
login_failures = FailureLimiter("login")


# --- Password sign-in (dashboard and admin) -----------------------------------------------------

class ThrottledModelBackend(ModelBackend):
    """Django's ModelBackend, except that an address over its limit of failed sign-ins cannot
    sign in at all until the window ends (PermissionDenied stops Django from asking the other
    backends). Failures are counted on Django's user_login_failed (core.apps)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and login_failures.check(request).blocked:
            raise PermissionDenied
        return super().authenticate(request, username=username, password=password, **kwargs)


def login_blocked(request) -> Verdict | None:
    """The verdict when `request`'s address may not sign in now (for the form's message)."""
    if request is None:
        return None
    verdict = login_failures.check(request)
    return verdict if verdict.blocked else None


def throttle_failed_bearer_tokens(app, limiter: FailureLimiter = api_token_failures):
    """The same protection for an ASGI app that checks Bearer tokens itself (the MCP endpoint,
    whose SDK never sees the client address): a 401 answered to a request that sent a token
    counts as a failure, the one past the limit becomes 429 `too_many_failures`, and a client
    over the limit gets 429 before the app sees its request."""

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        client = (scope.get("client") or ("unknown",))[0]
        if (verdict := await sync_to_async(limiter.check_address)(client)).blocked:
            return await _send_too_many_failures(send, verdict)
        sent_token = any(name.lower() == b"authorization" for name, _ in scope.get("headers") or ())
        replaced = False

        async def watched(message):
            nonlocal replaced
            if replaced:
                return  # the app's own 401 body, superseded by the 429
            if message["type"] == "http.response.start" and message["status"] == 401 and sent_token:
                verdict = await sync_to_async(limiter.fail_address)(client)
                if verdict.blocked:
                    replaced = True
                    return await _send_too_many_failures(send, verdict)
            await send(message)

        await app(scope, receive, watched)

    return guarded


async def _send_too_many_failures(send, verdict: Verdict) -> None:
    body = json.dumps({"code": TOO_MANY_FAILURES_CODE, "detail": verdict.message}).encode()
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"retry-after", str(verdict.retry_after).encode())]})
    await send({"type": "http.response.body", "body": body})
