"""In the browser: the Content-Security-Policy blocks nothing our own pages need (htmx, our
scripts and styles, the budget meters), so Chromium reports no violation on the main pages."""

import pytest

from tests.e2e.conftest import expect, login

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_main_pages_run_without_csp_violations(page, live_server, world):
    world.project.budget_hours = 10  # the project page draws a budget meter
    world.project.save(update_fields=["budget_hours"])
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    login(page, live_server, world.owner.username)
    for path in ("/dashboard/", "/dashboard/tickets/", f"/dashboard/projects/{world.project.key}/",
                 f"/dashboard/projects/{world.project.key}/board/", "/dashboard/settlements/",
                 "/dashboard/settlements/new/", "/dashboard/profile/", "/admin/"):
        page.goto(path)
        expect(page.locator("body")).to_be_visible()
        if path.startswith("/dashboard/"):
            assert page.evaluate("typeof window.htmx") == "object", path
    assert violations == []
