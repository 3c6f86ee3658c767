"""Brute-force protection (core.throttling): failed API tokens and unknown share links, counted
per client address in the shared cache, answer 429 with a code and Retry-After past the limit;
other clients and valid secrets of other clients are unaffected; concurrent failures cannot slip
past the limit."""

import secrets

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from core import throttling
from rbac import services as rbac_services
from settlements import services
from tests.helpers import race
from tests.tally import tally

LIMIT = 5
WINDOW = 60


@pytest.fixture(autouse=True)
def small_limits(settings):
    limits = {"failures": LIMIT, "window": WINDOW}
    settings.BRUTE_FORCE_LIMITS = {"api_token": limits, "share_link": limits, "login": limits}


def address() -> str:
    """A client address of this test alone: a Redis cache outlives runs and is shared by tests."""
    return "10.{}.{}.{}".format(*secrets.token_bytes(3))


def bearer(client, token, ip):
    return client.get("/api/users/me/", HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=ip)


def assert_throttled_json(response):
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "too_many_failures"
    assert 1 <= int(response["Retry-After"]) <= WINDOW


@pytest.mark.django_db
def test_failed_tokens_are_throttled_per_client(api_client):
    user = _user("ann")
    _, valid = rbac_services.api_token_create(actor=user, user=user, name="laptop")
    attacker, other = address(), address()
    for _ in range(LIMIT):
        tally("abuse")
        response = bearer(api_client, "sbt_" + secrets.token_urlsafe(32), attacker)
        assert response.status_code == 401 and response.json()["code"] == "invalid_token"
    tally("abuse")
    assert_throttled_json(bearer(api_client, "sbt_guess", attacker))
    # A right guess from the throttled client looks like any other: no oracle.
    assert_throttled_json(bearer(api_client, valid, attacker))
    # Other clients are not locked out, with a valid token or a typo.
    assert bearer(api_client, valid, other).status_code == 200
    assert bearer(api_client, "sbt_typo", other).status_code == 401
    # Sessions are not affected either: only Bearer attempts are counted.
    api_client.force_authenticate(user)
    assert api_client.get("/api/users/me/", REMOTE_ADDR=attacker).status_code == 200


@pytest.mark.django_db
def test_the_block_ends_with_the_window(api_client, monkeypatch):
    user = _user("bob")
    _, valid = rbac_services.api_token_create(actor=user, user=user, name="laptop")
    attacker = address()
    now = [1_000_000.0 * WINDOW]
    monkeypatch.setattr(throttling.time, "time", lambda: now[0])
    for _ in range(LIMIT + 1):
        bearer(api_client, "sbt_wrong", attacker)
    response = bearer(api_client, valid, attacker)
    assert_throttled_json(response)
    assert int(response["Retry-After"]) == WINDOW
    now[0] += WINDOW
    assert bearer(api_client, valid, attacker).status_code == 200


@pytest.mark.django_db
def test_malformed_headers_and_valid_tokens_are_not_counted(api_client):
    user = _user("cid")
    _, valid = rbac_services.api_token_create(actor=user, user=user, name="laptop")
    ip = address()
    for _ in range(LIMIT * 3):
        assert bearer(api_client, valid, ip).status_code == 200
    assert bearer(api_client, "sbt_wrong", ip).status_code == 401


@pytest.fixture
def shared_token(owner, settlement):
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    return services.share_link_create(actor=owner, settlement=settlement)[1]


def customer_page(client, token, ip):
    return client.get(reverse("customer:settlement", kwargs={"token": token}), REMOTE_ADDR=ip)


def customer_api(client, token, ip):
    return client.get(f"/api/public/settlements/{token}/", REMOTE_ADDR=ip)


@pytest.mark.django_db
@pytest.mark.usefixtures("isolated_storage")
def test_unknown_share_links_are_throttled_on_the_page(shared_token):
    client = Client()
    attacker, customer = address(), address()
    for _ in range(LIMIT):
        tally("abuse")
        assert customer_page(client, secrets.token_urlsafe(32), attacker).status_code == 404
    tally("abuse")
    response = customer_page(client, "guess", attacker)
    assert response.status_code == 429 and response["X-Error-Code"] == "too_many_failures"
    assert 1 <= int(response["Retry-After"]) <= WINDOW
    assert b"Too many failed attempts" in response.content
    assert response["Cache-Control"] == "private, no-store" and "frame-ancestors 'none'" in response[
        "Content-Security-Policy"]
    assert customer_page(client, shared_token, attacker).status_code == 429
    assert customer_page(client, shared_token, customer).status_code == 200
    # The acceptance form and the downloads share the count.
    accept = client.post(reverse("customer:accept", kwargs={"token": shared_token}), {"name": "Eve"},
                         REMOTE_ADDR=attacker)
    assert accept.status_code == 429


@pytest.mark.django_db
@pytest.mark.usefixtures("isolated_storage")
def test_unknown_share_links_are_throttled_on_the_api(shared_token):
    client = APIClient()
    attacker, customer = address(), address()
    for _ in range(LIMIT):
        tally("abuse")
        response = customer_api(client, secrets.token_urlsafe(32), attacker)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    tally("abuse")
    assert_throttled_json(customer_api(client, "guess", attacker))
    assert_throttled_json(customer_api(client, shared_token, attacker))
    assert_throttled_json(client.post(f"/api/public/settlements/{shared_token}/accept/", {"name": "Eve"},
                                      format="json", REMOTE_ADDR=attacker))
    assert customer_api(client, shared_token, customer).status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("isolated_storage")
def test_the_share_link_rate_limit_ignores_forwarded_for_headers(shared_token, monkeypatch):
    """A client cannot dodge the per-address request rate by sending a new X-Forwarded-For each
    time (REST_FRAMEWORK NUM_PROXIES = 0)."""
    from settlements.api.public import ShareLinkThrottle

    monkeypatch.setattr(ShareLinkThrottle, "rate", "2/minute")
    client, ip = APIClient(), address()
    answers = [client.get(f"/api/public/settlements/{shared_token}/", REMOTE_ADDR=ip,
                          HTTP_X_FORWARDED_FOR=address()).status_code for _ in range(3)]
    tally("abuse", 3)
    assert answers == [200, 200, 429]


@pytest.mark.django_db
@pytest.mark.usefixtures("isolated_storage")
def test_page_and_api_guesses_count_together(shared_token):
    attacker = address()
    for n in range(LIMIT):
        response = (customer_page(Client(), f"g{n}", attacker) if n % 2
                    else customer_api(APIClient(), f"g{n}", attacker))
        assert response.status_code == 404
    assert customer_page(Client(), "next", attacker).status_code == 429
    assert customer_api(APIClient(), "next", attacker).status_code == 429


# --- Races --------------------------------------------------------------------------------------

THREADS = LIMIT + 7


def all_looked_up(monkeypatch, module, name):
    """The worst case: every racing request has passed the "already blocked?" check and looked
    its secret up before any of them counts its failure."""
    import threading

    barrier = threading.Barrier(THREADS)
    original = getattr(module, name)

    def lookup(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        finally:
            barrier.wait(timeout=20)

    monkeypatch.setattr(module, name, lookup)


@pytest.mark.django_db(transaction=True)
def test_racing_failed_tokens_cannot_pass_the_limit(monkeypatch):
    from rbac import authentication

    tally("race")
    tally("abuse", THREADS)
    all_looked_up(monkeypatch, authentication, "user_for_token")
    attacker = address()
    outcomes = race(lambda n: bearer(APIClient(), f"sbt_race_{n}", attacker).status_code, THREADS)
    assert sorted(outcomes) == [401] * LIMIT + [429] * (THREADS - LIMIT), outcomes


@pytest.mark.django_db(transaction=True)
def test_racing_unknown_share_links_cannot_pass_the_limit(monkeypatch):
    tally("race")
    tally("abuse", THREADS)
    all_looked_up(monkeypatch, services, "shared_settlement")
    attacker = address()
    outcomes = race(lambda n: customer_page(Client(), f"race-{n}", attacker).status_code, THREADS)
    assert sorted(outcomes) == [404] * LIMIT + [429] * (THREADS - LIMIT), outcomes


def test_the_counter_itself_is_atomic(settings):
    """Forty threads failing at once on the bare limiter: exactly `LIMIT` are let through."""
    tally("race")
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR=address())
    outcomes = race(lambda n: throttling.share_link_failures.fail(request).blocked, 40)
    assert outcomes.count(False) == LIMIT and outcomes.count(True) == 40 - LIMIT


@pytest.mark.redis
def test_the_count_is_kept_in_redis_when_configured(settings):
    """Several web processes must share the count: with REDIS_URL it lives in Redis."""
    import redis
    from django.core.cache import cache
    from django.test import RequestFactory

    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    request = RequestFactory().get("/", REMOTE_ADDR=address())
    throttling.api_token_failures.fail(request)
    key = cache.make_key(throttling.api_token_failures._window(request.META["REMOTE_ADDR"])[0])
    assert int(redis.Redis.from_url(settings.REDIS_URL).get(key)) == 1


def _user(username):
    from tests.factories import UserFactory

    return UserFactory(username=username)


@pytest.mark.django_db
@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_failed_sign_ins_are_throttled_per_address(login_url):
    """Passwords are what people guess: after the limit of failures an address cannot sign in,
    even with the right password, and is told why; other addresses sign in as usual."""
    user = _user("ann")
    user.set_password("right-password")
    user.is_staff = True
    user.save()
    attacker, colleague = address(), address()

    def sign_in(password, ip):
        return Client().post(login_url, {"username": "ann", "password": password}, REMOTE_ADDR=ip)

    for n in range(LIMIT):
        tally("abuse")
        assert sign_in(f"guess-{n}", attacker).status_code == 200  # the form again, with its error
    tally("abuse")
    blocked = sign_in("right-password", attacker)
    assert blocked.status_code == 200 and "_auth_user_id" not in blocked.wsgi_request.session
    assert b"Too many failed sign-ins from your address" in blocked.content
    assert sign_in("right-password", colleague).status_code == 302
