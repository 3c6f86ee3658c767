"""The settlement pages run as many queries with many rows as with few (no N+1), for a project
admin who is not in every project a settlement spans: the global and per-project lists with
filters, the detail page, the ticket autocomplete, the create form's project choices and the
customer page behind a share link. (tests/settlements/test_pages.py counts the owner's list and
detail page.) Each page is requested once to warm up, then counted."""


import pytest
from django.test import Client

from tests.factories import ProjectFactory, grant
from tests.helpers import assert_flat, count_queries
from tests.settlements.test_api_query_counts import SettlementWorld, grow_settlements

pytestmark = pytest.mark.django_db

# Every page: session and user. Lists: the count, the page, its projects, the totals (two), whether
# a settlement may be created, the navigation, the filter's project choices (a project's list looks
# the project up instead; a posted project filter is validated with one more). Detail: the
# settlement, its projects with the reader's rights, totals (two), tickets, attachments, share links,
# events, navigation. Search: the settlement and the tickets. Customer page: no session or user.
MAX_QUERIES = {"list": 10, "list-by-projects": 11, "project-list": 10, "detail": 11, "search": 4, "create": 5,
               "customer": 7}


@pytest.fixture
def world():
    return SettlementWorld()


@pytest.fixture
def signed_in(world):
    client = Client()
    client.force_login(world.reader)
    return client


def measure(client: Client, url: str, sizes: list, size_of):
    def count() -> int:
        client.get(url)  # warm up: session, content types
        queries, response = count_queries(lambda: client.get(url))
        assert response.status_code == 200, response.content[:500]
        sizes.append(size_of(response))
        return queries

    return count


def listed(response) -> int:
    return len(response.context["page_obj"].object_list)


@pytest.mark.parametrize(("url", "kind"), [
    ("/dashboard/settlements/", "list"),
    ("/dashboard/settlements/?status=draft&date_from=2025-01-01&date_to=2025-12-31", "list"),
    ("/dashboard/projects/AAA/settlements/", "project-list"),
    ("/dashboard/projects/AAA/settlements/?status=draft", "project-list"),
], ids=["list", "list-filtered", "project", "project-filtered"])
def test_settlement_lists(world, signed_in, url, kind):
    sizes: list[int] = []
    grow = grow_settlements(world)
    grow(3)
    assert_flat(measure(signed_in, url, sizes, listed), lambda: grow(12), ceiling=MAX_QUERIES[kind])
    assert 0 < sizes[0] < sizes[1], sizes


def test_settlement_list_filtered_by_projects(world, signed_in):
    sizes: list[int] = []
    grow = grow_settlements(world)
    url = f"/dashboard/settlements/?projects={world.projects[0].pk}&projects={world.projects[1].pk}"
    grow(3)
    assert_flat(measure(signed_in, url, sizes, listed), lambda: grow(12), ceiling=MAX_QUERIES["list-by-projects"])
    assert 0 < sizes[0] < sizes[1], sizes


def test_detail_page_of_a_settlement_the_reader_sees_in_part(world, signed_in):
    """Linked tickets (those of CCC hidden but counted), attachments, share links, events."""
    sizes: list[int] = []
    url = f"/dashboard/settlements/{world.settlement.pk}/"

    def size_of(response):
        return len(response.context["linked"].rows), len(response.context["events"])

    world.grow(3)
    assert_flat(measure(signed_in, url, sizes, size_of), lambda: world.grow(12), ceiling=MAX_QUERIES["detail"])
    assert sizes[0] < sizes[1]


def test_ticket_autocomplete(world, signed_in):
    sizes: list[int] = []
    url = f"/dashboard/settlements/{world.settlement.pk}/tickets/search/?q=Unlinked"

    def size_of(response):
        return response.content.decode().count("Unlinked")

    world.grow(3)
    assert_flat(measure(signed_in, url, sizes, size_of), lambda: world.grow(12), ceiling=MAX_QUERIES["search"])
    assert 0 < sizes[0] < sizes[1]


def test_create_form_lists_the_writable_projects(world, signed_in):
    sizes: list[int] = []

    def grow(n: int) -> None:
        for _ in range(n):
            grant(world.reader, ProjectFactory(), "admin")
            grant(world.reader, ProjectFactory(), "viewer")  # no settlements:write: not offered

    def size_of(response):
        return len(response.context["form"].fields["projects"].queryset)

    grow(2)
    assert_flat(measure(signed_in, "/dashboard/settlements/new/", sizes, size_of), lambda: grow(13),
                ceiling=MAX_QUERIES["create"])
    assert sizes == [4, 17]


def test_customer_page(world):
    sizes: list[tuple[int, int]] = []

    def size_of(response):
        payload = response.context["settlement"]
        return len(payload["tickets"]), len(payload["attachments"])

    def count() -> int:
        return measure(Client(), f"/s/{world.token}/", sizes, size_of)()

    world.grow(2)
    assert_flat(count, lambda: world.grow(13), ceiling=MAX_QUERIES["customer"])
    assert sizes == [(2, 2), (15, 10)]
