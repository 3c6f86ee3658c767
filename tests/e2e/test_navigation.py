"""In the browser: the base layout's main navigation follows the user's project permissions, and
the language switcher changes the page language."""

import pytest

from tests.e2e.conftest import expect, login

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MAIN_NAV = 'nav[aria-label="Main navigation"]'
SETTLEMENTS_URL = "/dashboard/settlements/"


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_settlements_link_is_in_the_navigation_with_settlements_read(page, live_server, world, role):
    login(page, live_server, getattr(world, role).username)
    nav = page.locator(MAIN_NAV)

    settlements = nav.get_by_role("link", name="Settlements")
    expect(settlements).to_have_attribute("href", SETTLEMENTS_URL)
    settlements.click()
    expect(page).to_have_url(f"{live_server.url}{SETTLEMENTS_URL}")
    expect(nav.get_by_role("link", name="Settlements")).to_have_attribute("aria-current", "page")


@pytest.mark.parametrize("role", ["member", "viewer", "outsider"])
def test_settlements_link_is_not_offered_without_settlements_read(page, live_server, world, role):
    login(page, live_server, getattr(world, role).username)
    nav = page.locator(MAIN_NAV)

    # The navigation is there, with the entries everyone has ...
    expect(nav.get_by_role("link", name="My work")).to_be_visible()
    expect(nav.get_by_role("link", name="Projects")).to_be_visible()
    # ... but nothing leads to the settlements.
    expect(nav.get_by_role("link", name="Settlements")).to_have_count(0)
    expect(nav.locator(f'a[href^="{SETTLEMENTS_URL}"]')).to_have_count(0)
    expect(page.locator('[data-nav="settlements"]')).to_have_count(0)


def test_language_switcher_changes_the_page_language_to_polish(page, live_server, world):
    login(page, live_server, world.member.username)
    page.goto(f"{live_server.url}/dashboard/profile/")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # By code: the option reads "polski", Django's own (lower-case) name of the language.
    page.get_by_label("Language").select_option("pl")
    with page.expect_navigation():
        page.get_by_role("button", name="Change language").click()

    # Back on the same page, now in Polish, and it stays so on the next page.
    expect(page).to_have_url(f"{live_server.url}/dashboard/profile/")
    expect(page.locator("html")).to_have_attribute("lang", "pl")
    expect(page.locator("#language-select")).to_have_value("pl")
    page.goto(f"{live_server.url}/dashboard/")
    expect(page.locator("html")).to_have_attribute("lang", "pl")
    nav = page.locator("nav.mainnav")  # its aria-label is in Polish now
    expect(nav).to_have_attribute("aria-label", "Nawigacja główna")
    expect(nav.get_by_role("link", name="Projekty")).to_be_visible()
    expect(nav.get_by_role("link", name="Moja praca")).to_be_visible()
    expect(page.get_by_role("button", name="Wyloguj")).to_be_visible()
