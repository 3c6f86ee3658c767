"""Personal API tokens: Bearer authentication, hashing, expiry, revocation, CLI and API."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from rbac import services
from rbac.authentication import INVALID_TOKEN_MESSAGE
from rbac.models import ApiToken
from rbac.tokens import token_digest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _me(api_client, token: str):
    return api_client.get("/api/users/me/", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_token_authenticates_and_is_stored_hashed(api_client):
    user = UserFactory(username="ann")
    token, plain = services.api_token_create(actor=user, user=user, name="laptop")
    assert plain not in {token.digest, token.prefix} and token.digest == token_digest(plain)
    assert not ApiToken.objects.filter(digest=plain).exists()
    response = _me(api_client, plain)
    assert response.status_code == 200 and response.json()["username"] == "ann"
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer", "Bearer a b", "bearer sbt_unknown"])
def test_bad_tokens_are_401_with_a_code(api_client, header):
    response = api_client.get("/api/tickets/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response["WWW-Authenticate"] == "Bearer"


def test_anonymous_is_401(api_client):
    response = api_client.get("/api/tickets/")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_revoked_and_expired_tokens_stop_working(api_client):
    user = UserFactory(username="ann")
    token, plain = services.api_token_create(actor=user, user=user, name="ci")
    assert _me(api_client, plain).status_code == 200
    services.api_token_revoke(actor=user, token=token)
    response = _me(api_client, plain)
    assert response.status_code == 401 and response.json()["detail"] == INVALID_TOKEN_MESSAGE

    token, plain = services.api_token_create(actor=user, user=user, name="short",
                                             expires_at=timezone.now() + timedelta(minutes=5))
    assert _me(api_client, plain).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _me(api_client, plain).status_code == 401


def test_tokens_of_deactivated_users_stop_working(api_client):
    user = UserFactory(username="ann")
    _, plain = services.api_token_create(actor=user, user=user, name="ci")
    user.is_active = False
    user.save()
    assert _me(api_client, plain).status_code == 401


def test_create_api_token_command_prints_a_working_token(api_client):
    UserFactory(username="bob")
    out = StringIO()
    call_command("create_api_token", "bob", "--name", "script", "--expires-in-days", "30", stdout=out)
    plain = out.getvalue().strip()
    assert _me(api_client, plain).json()["username"] == "bob"
    token = ApiToken.objects.get(name="script")
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    with pytest.raises(CommandError):
        call_command("create_api_token", "ghost", stdout=StringIO())


def test_token_api_shows_the_token_once_and_revokes(client_for, api_client):
    user = UserFactory(username="ann")
    client = client_for(user)
    created = client.post("/api/tokens/", {"name": "laptop"}, format="json")
    assert created.status_code == 201
    plain = created.json()["token"]
    listed = client.get("/api/tokens/").json()["results"]
    assert len(listed) == 1 and "token" not in listed[0] and listed[0]["prefix"] == plain[:12]
    assert client.delete(f"/api/tokens/{listed[0]['id']}/").status_code == 204
    assert _me(api_client, plain).status_code == 401


def test_token_api_refuses_past_expiry_and_hides_other_users_tokens(client_for):
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    response = client_for(ann).post("/api/tokens/", {"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
                                    format="json")
    assert response.status_code == 400 and response.json()["code"] == "expired"
    token, _ = services.api_token_create(actor=bob, user=bob, name="bob's")
    assert client_for(ann).delete(f"/api/tokens/{token.pk}/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_purge_removes_only_long_expired_tokens():
    user = UserFactory(username="ann")
    old, _ = services.api_token_create(actor=user, user=user, name="old")
    services.api_token_create(actor=user, user=user, name="fresh")
    ApiToken.objects.filter(pk=old.pk).update(revoked_at=timezone.now() - timedelta(days=200))
    assert services.api_tokens_purge_expired(older_than_days=90) == 1
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["fresh"]


def test_a_token_cannot_mint_tokens_but_a_session_and_a_superuser_can(api_client, client):
    """A leaked token must not outlive its revocation by creating another; signed-in users
    create theirs with a session, superusers still issue service-account tokens with one."""
    user = UserFactory(username="ann")
    _, plain = services.api_token_create(actor=user, user=user, name="laptop")
    refused = api_client.post("/api/tokens/", {"name": "copy"}, format="json", HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert refused.status_code == 403 and refused.json()["code"] == "session_required"
    assert ApiToken.objects.filter(user=user).count() == 1
    client.force_login(user)
    assert client.post("/api/tokens/", {"name": "new"}, content_type="application/json").status_code == 201
    root = UserFactory(username="root", is_superuser=True)
    _, root_plain = services.api_token_create(actor=root, user=root, name="bootstrap")
    issued = api_client.post(f"/api/users/{user.pk}/tokens/", {"name": "importer"}, format="json",
                             HTTP_AUTHORIZATION=f"Bearer {root_plain}")
    assert issued.status_code == 201
