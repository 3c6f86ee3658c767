"""List endpoints run a constant number of queries whatever the page size (no N+1)."""

import pytest

from tests.factories import ExpenseFactory, ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

# Session/auth, permission sub-select + count, page rows: independent of the number of rows.
MAX_LIST_QUERIES = 4


@pytest.fixture
def member_with_data(client_for):
    user = UserFactory(username="m")
    assignee = UserFactory(username="a")
    for key in ("AAA", "BBB"):
        project = ProjectFactory(key=key)
        grant(user, project, "member")
        grant(assignee, project, "member")
        for _ in range(30):
            ticket = TicketFactory(project=project, assignee=assignee, created_by=user)
            TimeEntryFactory(ticket=ticket, user=assignee)
            ExpenseFactory(ticket=ticket, user=assignee)
    return client_for(user)


@pytest.mark.parametrize("url", ["/api/tickets/", "/api/time-entries/", "/api/expenses/", "/api/projects/"])
@pytest.mark.parametrize("page_size", [1, 10, 60])
def test_list_query_count_is_constant(member_with_data, django_assert_max_num_queries, url, page_size):
    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        response = member_with_data.get(url, {"page_size": page_size})
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(page_size, 2 if url == "/api/projects/" else 60)


def test_ticket_list_carries_logged_minutes(member_with_data):
    row = member_with_data.get("/api/tickets/", {"page_size": 1}).json()["results"][0]
    assert row["logged_minutes"] == 60 and row["assignee"] == "a" and row["created_by"] == "m"


def test_ticket_filters(member_with_data):
    client = member_with_data
    assert client.get("/api/tickets/", {"project": "AAA"}).json()["count"] == 30
    assert client.get("/api/tickets/", {"project": "aaa,bbb"}).json()["count"] == 60
    assert client.get("/api/tickets/", {"q": "AAA-3"}).json()["results"][0]["key"] == "AAA-3"
    assert client.get("/api/tickets/", {"assignee": "a", "status": "backlog"}).json()["count"] == 60
    assert client.get("/api/tickets/", {"assignee": "none"}).json()["count"] == 0
    assert client.get("/api/tickets/", {"priority": "critical"}).json()["count"] == 0
    assert client.get("/api/tickets/", {"status": "nonsense"}).status_code == 400
