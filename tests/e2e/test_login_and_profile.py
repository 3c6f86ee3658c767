"""In the browser: the login page, and personal API tokens on the profile page (created, shown
once, listed by name, revoked after a confirmation)."""

import re

import pytest

from rbac.models import ApiToken
from tests.e2e.conftest import expect, login, screenshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TOKEN_NAME = "Accounting export"


def test_anonymous_dashboard_redirects_to_the_login_page(page, live_server):
    page.goto(f"{live_server.url}/dashboard/")

    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/dashboard/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator('nav[aria-label="Main navigation"]')).to_have_count(0)
    screenshot(page, "login")


def test_wrong_password_stays_on_the_login_page(page, live_server, world):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(world.owner.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("alert")).to_contain_text("correct username and password")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")


def test_api_token_is_shown_once_listed_by_name_and_revoked_after_confirming(page, live_server, world, playwright):
    login(page, live_server, world.owner.username)
    expect(page).to_have_url(f"{live_server.url}/dashboard/")

    page.goto(f"{live_server.url}/dashboard/profile/")
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    page.get_by_label("Token name").fill(TOKEN_NAME)
    page.get_by_label("Expires at").fill("2099-12-31T23:30")
    page.get_by_role("button", name="Create token").click()

    plain_token = page.get_by_test_id("plain-token")
    expect(plain_token).to_be_visible()
    plain = plain_token.input_value()
    token = ApiToken.objects.get(user=world.owner)
    assert (token.name, token.revoked_at) == (TOKEN_NAME, None)
    assert plain.startswith(token.prefix) and len(plain) > len(token.prefix)
    expect(page.get_by_role("alert")).to_contain_text(f"Token “{TOKEN_NAME}” created.")
    screenshot(page, "profile")

    # The shown token is a working credential (a fresh HTTP client: no session cookie).
    api = playwright.request.new_context(base_url=live_server.url)
    try:
        assert api.get("/api/projects/", headers={"Authorization": f"Bearer {plain}"}).status == 200

        # Coming back: listed by name, the token itself is gone for good.
        page.goto(f"{live_server.url}/dashboard/profile/")
        expect(page.get_by_test_id("plain-token")).to_have_count(0)
        assert plain not in page.content()
        row = page.get_by_role("row").filter(has_text=TOKEN_NAME)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(f"{token.prefix}…")
        expect(row).to_contain_text("active")

        # Dismissing the confirmation keeps the token.
        revoke = row.get_by_role("button", name=re.compile("^Revoke"))
        questions = []
        page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
        revoke.click()
        expect(row).to_contain_text("active")
        assert questions == ["Revoke this token? Scripts using it stop working at once."]
        token.refresh_from_db()
        assert token.revoked_at is None

        # Accepting it revokes the token.
        page.once("dialog", lambda dialog: dialog.accept())
        with page.expect_navigation():
            revoke.click()
        expect(page).to_have_url(f"{live_server.url}/dashboard/profile/")
        expect(page.locator("#messages")).to_contain_text(f"Token “{TOKEN_NAME}” revoked.")
        row = page.get_by_role("row").filter(has_text=TOKEN_NAME)
        expect(row).to_contain_text("revoked")
        expect(row.get_by_role("button")).to_have_count(0)
        token.refresh_from_db()
        assert token.revoked_at is not None
        assert api.get("/api/projects/", headers={"Authorization": f"Bearer {plain}"}).status == 401
    finally:
        api.dispose()
