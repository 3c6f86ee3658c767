"""The rbac lists run as many queries with many rows as with few (no N+1): users, the caller's
own memberships (/api/users/me/), personal API tokens, a project's members and roles, and the
profile page. Each request is counted as a fresh user object (or a fresh session), as in
production, so nothing is served from a permission cache."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from rbac import services
from tests.factories import ProjectFactory, UserFactory, grant
from tests.helpers import assert_flat, count_queries

pytestmark = pytest.mark.django_db

User = get_user_model()

# The count, the page and one prefetch of the users' permissions (their content types joined in).
MAX_USER_QUERIES = 3
# The caller's memberships with their projects and roles.
MAX_ME_QUERIES = 1
# The count and the page.
MAX_TOKEN_QUERIES = 2
# The project (permission sub-select inside), the count, the page.
MAX_MEMBER_QUERIES = 3
MAX_ROLE_QUERIES = 3
# Session, user, the navigation's settlements check, the memberships, the tokens.
MAX_PROFILE_QUERIES = 5


def fresh(user):
    return User.objects.get(pk=user.pk)


def api_measure(client_for, user, url: str, pages: list, *, paginated: bool = True):
    def measure() -> int:
        api = client_for(fresh(user))
        queries, response = count_queries(lambda: api.get(url))
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(len(body["results"]) if paginated else len(body["memberships"]))
        return queries

    return measure


@pytest.fixture
def projects():
    keeper = UserFactory(username="keeper")
    projects = [ProjectFactory(key=key) for key in ("AAA", "BBB", "CCC")]
    for project in projects:
        grant(keeper, project, "owner")
    return projects


def test_users_list(client_for):
    root = UserFactory(username="root", is_superuser=True)
    added = []

    def grow(n: int) -> None:
        for _ in range(n):
            user = UserFactory()
            services.user_set_global_permissions(actor=root, user=user, permissions=["billing.view",
                                                                                      "tickets.add_project"])
            added.append(user)

    pages: list[int] = []
    grow(2)
    assert_flat(api_measure(client_for, root, "/api/users/", pages), lambda: grow(13), ceiling=MAX_USER_QUERIES)
    assert pages == [3, 16]


def test_my_memberships(client_for, projects):
    """/api/users/me/ lists the caller's memberships with their roles' permissions."""
    me = UserFactory(username="me")
    roles = iter(["owner", "admin", "member", "viewer"] * 5)

    def grow(n: int) -> None:
        for _ in range(n):
            project = ProjectFactory()
            grant(me, project, next(roles))
            grant(UserFactory(), project, "owner")  # someone else's membership, not listed

    pages: list[int] = []
    grow(2)
    measure = api_measure(client_for, me, "/api/users/me/", pages, paginated=False)
    assert_flat(measure, lambda: grow(13), ceiling=MAX_ME_QUERIES)
    assert pages == [2, 15]


def test_my_tokens(client_for):
    me, other = UserFactory(username="me"), UserFactory(username="other")

    def grow(n: int) -> None:
        for number in range(n):
            services.api_token_create(actor=me, user=me, name=f"token {number}")
            services.api_token_create(actor=other, user=other, name=f"theirs {number}")

    pages: list[int] = []
    grow(2)
    assert_flat(api_measure(client_for, me, "/api/tokens/", pages), lambda: grow(13), ceiling=MAX_TOKEN_QUERIES)
    assert pages == [2, 15]


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_project_members(client_for, projects, role):
    """Any member may list a project's members; counted for an admin and a plain viewer."""
    reader = UserFactory(username="reader")
    for project in projects:
        grant(reader, project, role)

    def grow(n: int) -> None:
        for number in range(n):
            grant(UserFactory(), projects[0], ["admin", "member", "viewer"][number % 3])
            grant(UserFactory(), projects[1], "member")  # another project's member

    pages: list[int] = []
    grow(2)
    measure = api_measure(client_for, reader, "/api/projects/AAA/members/", pages)
    assert_flat(measure, lambda: grow(13), ceiling=MAX_MEMBER_QUERIES)
    assert pages == [4, 17]  # keeper and reader too


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_project_roles(client_for, projects, role):
    reader = UserFactory(username="reader")
    for project in projects:
        grant(reader, project, role)
    keeper = User.objects.get(username="keeper")
    added = iter(range(100))

    def grow(n: int) -> None:
        for _ in range(n):
            number = next(added)
            for project in projects[:2]:  # BBB's roles are not AAA's
                services.role_create(actor=keeper, project=project, slug=f"custom-{number}", name=f"Custom {number}",
                                     permissions=["tickets:read"])

    pages: list[int] = []
    grow(2)
    measure = api_measure(client_for, reader, "/api/projects/AAA/roles/", pages)
    assert_flat(measure, lambda: grow(13), ceiling=MAX_ROLE_QUERIES)
    assert pages[1] - pages[0] == 13


def test_profile_page(projects):
    me = UserFactory(username="me")
    browser = Client()
    browser.force_login(me)
    roles = iter(["owner", "admin", "member", "viewer"] * 5)

    def grow(n: int) -> None:
        for number in range(n):
            grant(me, ProjectFactory(), next(roles))
            token, _ = services.api_token_create(actor=me, user=me, name=f"token {number}")
            if number % 2:
                services.api_token_revoke(actor=me, token=token)

    def measure() -> int:
        browser.get("/dashboard/profile/")  # warm up: session, content types
        queries, response = count_queries(lambda: browser.get("/dashboard/profile/"))
        assert response.status_code == 200
        return queries

    grow(2)
    assert_flat(measure, lambda: grow(13), ceiling=MAX_PROFILE_QUERIES)
    page = browser.get("/dashboard/profile/")
    assert len(page.context["memberships"]) == len(page.context["tokens"]) == 15
    assert page.content.decode().count("/revoke/") == 8  # the revoked ones have no button
