"""Answers the dashboard gives outside its views: NUL bytes in form posts, and htmx requests
refused by Django itself (404, CSRF, an expired session) shown as a message, not swapped in."""

import pytest
from django.test import Client

from tests.factories import ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def member():
    user = UserFactory(username="member")
    grant(user, ProjectFactory(key="MNX"), "member")
    return user


def test_nul_in_a_url_encoded_form_post_is_a_400_before_any_view(client, member):
    client.force_login(member)
    response = client.post("/dashboard/tickets/new/", "project=MN%00X&title=x",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_nul_in_a_multipart_post_counts_as_no_value(client, member):
    client.force_login(member)
    response = client.post("/dashboard/tickets/new/", {"project": "MN\x00X", "title": "x"})
    assert response.status_code == 400  # the form's own error (no project chosen), not a 500


def test_htmx_404_from_django_becomes_a_message(client, member):
    client.force_login(member)
    response = client.post("/dashboard/tickets/MNX-999/status/", {"status": "done"}, headers=HTMX)
    assert response.status_code == 404
    assert response["HX-Retarget"] == "#messages" and 'data-error-status="404"' in response.content.decode()


def test_htmx_csrf_failure_becomes_a_message(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.post("/dashboard/tickets/MNX-1/status/", {"status": "done"}, headers=HTMX)
    assert response.status_code == 403 and response["HX-Retarget"] == "#messages"
    assert "Reload the page" in response.content.decode()


def test_htmx_request_with_an_expired_session_goes_to_the_login_page(client):
    response = client.post("/dashboard/tickets/MNX-1/status/", {"status": "done"}, headers=HTMX)
    assert response.status_code == 204 and response["HX-Redirect"].startswith("/accounts/login/")


def test_plain_requests_keep_django_answers(client, member):
    assert client.get("/dashboard/").status_code == 302  # to the login page, as a redirect
    client.force_login(member)
    response = client.get("/dashboard/tickets/MNX-999/")
    assert response.status_code == 404 and not response.has_header("HX-Retarget")
