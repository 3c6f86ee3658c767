"""Browser tests: pytest-playwright driving Debian's Chromium against pytest-django's live_server.

Every test here is marked `postgres` and uses the transactional database (live_server serves
from other threads, so test data must be committed); it needs Chromium too. Both are skipped,
with the reason, when missing, and fail under REQUIRE_SERVICES=1 (as in tests/conftest.py).

Why the Playwright fixtures are re-declared with package scope: between two calls the sync API
leaves its event loop marked as running in the test thread. While that is so, Django's ORM
refuses to run (hence DJANGO_ALLOW_ASYNC_UNSAFE), and asyncio.run() and async_to_sync refuse
too. pytest-playwright's session-scoped fixtures would keep Playwright alive to the end of the
run, through every test pytest-django orders after these (the other transactional tests, then
all tests without a database). Package scope stops it, which unmarks the loop, as soon as the
last browser test is done.

For tests: `login`, `screenshot`, `expect`, `PASSWORD`, `make_user` and the fixtures `world`,
`page` (with short timeouts, failing on JavaScript errors and broken static files) and
`base_url` (= live_server.url, so `page.goto("/dashboard/")` works).
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from playwright.sync_api import Page, expect, sync_playwright

from tests.factories import ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tickets.models import Project, Ticket, TimeEntry

__all__ = ["PASSWORD", "expect", "login", "make_user", "screenshot"]

CHROMIUM_HINT = "needs Chromium: apt-get install -y chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "e2e-Correct-Horse-42"

# A hung page fails in seconds, not after Playwright's 30 s defaults (or 3 min for a launch).
ACTION_TIMEOUT_MS = 10_000
NAVIGATION_TIMEOUT_MS = 15_000
LAUNCH_TIMEOUT_MS = 30_000

# Static files the page failed to load are reported; other 4xx answers may be what a test wants.
ASSET_TYPES = {"stylesheet", "script", "image", "font"}


def chromium_path() -> str | None:
    return shutil.which("chromium")


def pytest_runtest_setup(item):
    """The `chromium` case of the service rule in tests/conftest.py (this hook sees only tests/e2e)."""
    if chromium_path():
        return
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but this test {CHROMIUM_HINT}", pytrace=False)
    pytest.skip(CHROMIUM_HINT)


# --- Playwright, scoped to this package (see the module docstring) ---------------------------

@pytest.fixture(scope="package", autouse=True)
def _allow_async_unsafe_orm():
    """Django's ORM refuses to run while Playwright's loop is marked as running in this thread
    (test data, assertions, and pytest-django's flush at the end of each test, which a
    function-scoped monkeypatch might not outlive): allow it for as long as Playwright may be
    alive, i.e. for this package, and not in the rest of the run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="package")
def playwright(_allow_async_unsafe_orm, _pw_api_request_contexts):
    pw = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(pw)
    yield pw
    pw.stop()  # also unmarks the loop


@pytest.fixture(scope="package")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="session")
def browser_type_launch_args(pytestconfig):
    """Debian's Chromium (Playwright cannot download its own browser here), headless."""
    executable = chromium_path()
    if executable is None:  # pytest_runtest_setup has already decided; this is for other callers
        pytest.skip(CHROMIUM_HINT)
    args = list(CHROMIUM_ARGS)
    if pytestconfig.getoption("--headed"):
        args.remove("--headless")
    return {"executable_path": executable, "args": args, "headless": "--headless" in args,
            "timeout": LAUNCH_TIMEOUT_MS}


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type):
    def launch(**kwargs):
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser):
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def base_url(live_server):
    """Relative URLs in page.goto() go to the live server."""
    return live_server.url


@pytest.fixture(scope="package")
def browser_context_args(base_url, pytestconfig, _pw_artifacts_folder):
    # English and Oslo time whatever the machine says, and one window size for the screenshots.
    args = {"base_url": base_url, "locale": "en-GB", "timezone_id": "Europe/Oslo",
            "viewport": {"width": 1280, "height": 800}}
    if pytestconfig.getoption("--video") in ("on", "retain-on-failure"):
        args["record_video_dir"] = _pw_artifacts_folder.name
    return args


@pytest.fixture
def context(new_context):
    context = new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    return context


@pytest.fixture
def page(context):
    """A page of its own browser context (fresh cookies). The test fails if a script raised or a
    stylesheet, script, image or font did not load."""
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"JavaScript error: {error}"))
    page.on("requestfailed", lambda request: problems.append(
        f"{request.resource_type} failed: {request.url} ({request.failure})")
        if request.resource_type in ASSET_TYPES else None)
    page.on("response", lambda response: problems.append(
        f"{response.request.resource_type} answered {response.status}: {response.url}")
        if response.request.resource_type in ASSET_TYPES and response.status >= 400 else None)
    yield page
    assert not problems, "The browser reported problems:\n" + "\n".join(problems)


# --- Helpers ----------------------------------------------------------------------------------

def login(page: Page, live_server, username: str, password: str = PASSWORD) -> None:
    """Log in through the real form at /accounts/login/ and wait for the page it leads to."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    if urlsplit(page.url).path == "/accounts/login/":  # the form again, with its error
        errors = page.get_by_role("alert").all_inner_texts()
        raise AssertionError(f"Logging in as {username!r} failed: {errors or page.title()}")


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as docs/screenshots/<name>.png (overwritten), after checking that the
    stylesheets were applied: an unstyled page is a failure, not a picture."""
    styled = page.evaluate("""() => document.styleSheets.length > 0 && [...document.styleSheets].every(
        sheet => { try { return sheet.cssRules.length > 0; } catch (error) { return false; } })""")
    assert styled, f"{page.url}: stylesheets missing or empty"
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=path, full_page=True, animations="disabled")
    return path


def make_user(username: str, *, password: str = PASSWORD, **fields):
    """A user who can log in through the form with `password`."""
    user = UserFactory(username=username, **fields)
    user.set_password(password)
    user.save()
    return user


@dataclass
class World:
    """What `world` builds: one project (key WEB) with a user per built-in role, three tickets
    and some logged time. Every user's password is `password`."""

    password: str
    owner: AbstractBaseUser
    admin: AbstractBaseUser
    member: AbstractBaseUser
    viewer: AbstractBaseUser
    outsider: AbstractBaseUser  # no role anywhere
    project: Project
    tickets: list[Ticket] = field(default_factory=list)
    time_entries: list[TimeEntry] = field(default_factory=list)


@pytest.fixture
def world(transactional_db) -> World:
    project = ProjectFactory(key="WEB", name="Web shop")
    users = {role: make_user(f"e2e-{role}", first_name=role.title(), last_name="Tester")
             for role in ("owner", "admin", "member", "viewer", "outsider")}
    for role in ("owner", "admin", "member", "viewer"):
        grant(users[role], project, role)
    tickets = [TicketFactory(project=project, title=title)
               for title in ("Checkout page", "Payment provider", "Order e-mails")]
    entries = [TimeEntryFactory(ticket=tickets[0], user=users["member"], minutes=90),
               TimeEntryFactory(ticket=tickets[1], user=users["owner"], minutes=120)]
    return World(password=PASSWORD, project=project, tickets=tickets, time_entries=entries, **users)
