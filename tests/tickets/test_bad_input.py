"""Bad input answers 400/404 with a clear message and a machine-readable code, and writes nothing."""

import pytest

from tests.factories import ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tickets.models import Expense, Project, Ticket, TimeEntry
from tickets.services import DUPLICATE_PROJECT_KEY_MESSAGE, PROJECT_KEY_IMMUTABLE_MESSAGE

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client_for):
    user = UserFactory(username="owner", is_superuser=False)
    project = ProjectFactory(key="MNX")
    grant(user, project, "owner")
    return client_for(user), project, user


def _counts():
    return Project.objects.count(), Ticket.objects.count(), TimeEntry.objects.count(), Expense.objects.count()


def _field_error(response, field):
    body = response.json()
    assert "detail" in body and body["code"]
    return body["errors"][field][0]


def test_unknown_project_key_on_ticket_create(owner_client):
    client, _, _ = owner_client
    before = _counts()
    response = client.post("/api/tickets/", {"project": "NOPE", "title": "x"}, format="json")
    assert response.status_code == 400
    error = _field_error(response, "project")
    assert error["code"] == "does_not_exist" and "NOPE" in error["message"]
    assert _counts() == before


def test_unknown_project_key_in_url_is_404(owner_client):
    client, _, _ = owner_client
    response = client.get("/api/projects/NOPE/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert client.get("/api/tickets/NOPE-1/").status_code == 404
    assert client.get("/api/projects/NOPE/members/").status_code == 404


@pytest.mark.parametrize("minutes", [0, -5, 1441, 2000])
def test_minutes_out_of_range(owner_client, minutes):
    client, project, _ = owner_client
    ticket = TicketFactory(project=project)
    before = _counts()
    response = client.post("/api/time-entries/", {"ticket": ticket.key, "work_date": "2026-10-01",
                                                  "minutes": minutes}, format="json")
    assert response.status_code == 400
    error = _field_error(response, "minutes")
    assert error["code"] in {"min_value", "max_value"}
    assert _counts() == before


def test_minutes_out_of_range_on_update_keeps_the_entry(owner_client):
    client, project, user = owner_client
    entry = TimeEntryFactory(ticket=TicketFactory(project=project), user=user, minutes=30)
    response = client.patch(f"/api/time-entries/{entry.pk}/", {"minutes": 2000}, format="json")
    assert response.status_code == 400
    entry.refresh_from_db()
    assert entry.minutes == 30


@pytest.mark.parametrize("bad_date", ["2026-13-01", "01.10.2026", "yesterday", "2026-02-30", ""])
def test_malformed_dates(owner_client, bad_date):
    client, project, _ = owner_client
    ticket = TicketFactory(project=project)
    before = _counts()
    response = client.post("/api/time-entries/", {"ticket": ticket.key, "work_date": bad_date, "minutes": 30},
                           format="json")
    assert response.status_code == 400
    assert _field_error(response, "work_date")["code"] in {"invalid", "required", "null"}
    response = client.patch(f"/api/tickets/{ticket.key}/", {"due_date": bad_date or "x"}, format="json")
    assert response.status_code == 400
    assert _counts() == before


def test_malformed_filter_date_is_400(owner_client):
    client, _, _ = owner_client
    response = client.get("/api/time-entries/", {"date_from": "not-a-date"})
    assert response.status_code == 400
    assert "date_from" in response.json()["errors"]


def test_duplicate_project_key(client_for):
    boss = UserFactory(username="boss", is_superuser=True)
    ProjectFactory(key="MNX")
    before = _counts()
    response = client_for(boss).post("/api/projects/", {"key": "MNX", "name": "Again"}, format="json")
    assert response.status_code == 400
    error = _field_error(response, "key")
    assert error["code"] == "unique"
    assert error["message"] == DUPLICATE_PROJECT_KEY_MESSAGE.format(key="MNX")
    assert _counts() == before


@pytest.mark.parametrize("key", ["M", "mnx", "TOOLONGKEYXX", "MN1", "MN-X"])
def test_invalid_project_key(client_for, key):
    boss = UserFactory(username="boss", is_superuser=True)
    response = client_for(boss).post("/api/projects/", {"key": key, "name": "x"}, format="json")
    assert response.status_code == 400
    assert _field_error(response, "key")["code"] in {"invalid_key", "max_length"}
    assert Project.objects.count() == 0


def test_project_key_cannot_change(owner_client):
    client, project, _ = owner_client
    response = client.patch(f"/api/projects/{project.key}/", {"key": "NEW"}, format="json")
    assert response.status_code == 400
    assert _field_error(response, "key") == {"message": PROJECT_KEY_IMMUTABLE_MESSAGE, "code": "immutable"}
    assert Project.objects.filter(key="MNX").exists()


def test_someone_elses_ticket_id_in_a_time_entry(owner_client):
    client, _, _ = owner_client
    foreign = TicketFactory(project=ProjectFactory(key="SECRET"))
    before = _counts()
    for reference in (foreign.pk, foreign.key):
        response = client.post("/api/time-entries/", {"ticket": reference, "work_date": "2026-10-01",
                                                      "minutes": 30}, format="json")
        assert response.status_code == 400
        assert _field_error(response, "ticket")["code"] == "does_not_exist"
    assert _counts() == before


def test_moving_an_entry_to_someone_elses_ticket(owner_client):
    client, project, user = owner_client
    entry = TimeEntryFactory(ticket=TicketFactory(project=project), user=user)
    foreign = TicketFactory(project=ProjectFactory(key="SECRET"))
    response = client.patch(f"/api/time-entries/{entry.pk}/", {"ticket": foreign.key}, format="json")
    assert response.status_code == 400
    entry.refresh_from_db()
    assert entry.ticket.project.key == "MNX"


@pytest.mark.parametrize("payload,field,code", [
    ({"amount": "0"}, "amount", "min_value"),
    ({"amount": "-3"}, "amount", "min_value"),
    ({"amount": "abc"}, "amount", "invalid"),
    ({"amount": "1.234"}, "amount", "max_decimal_places"),
    ({"currency": "XXX"}, "currency", "invalid_choice"),
    ({"currency": "nok"}, "currency", "invalid_choice"),
])
def test_bad_expenses(owner_client, payload, field, code):
    client, project, _ = owner_client
    ticket = TicketFactory(project=project)
    body = {"ticket": ticket.key, "date": "2026-10-01", "description": "x", "amount": "10", "currency": "NOK",
            **payload}
    response = client.post("/api/expenses/", body, format="json")
    assert response.status_code == 400
    assert _field_error(response, field)["code"] == code
    assert Expense.objects.count() == 0


def test_bad_ticket_fields(owner_client):
    client, project, _ = owner_client
    for payload, field in [({"title": ""}, "title"), ({"priority": "urgent"}, "priority"),
                           ({"status": "closed"}, "status"), ({"assignee": "ghost"}, "assignee")]:
        response = client.post("/api/tickets/", {"project": project.key, "title": "ok", **payload}, format="json")
        assert response.status_code == 400, payload
        assert field in response.json()["errors"]
    assert Ticket.objects.count() == 0


def test_assignee_must_read_the_project(owner_client):
    client, project, _ = owner_client
    UserFactory(username="outsider")
    response = client.post("/api/tickets/", {"project": project.key, "title": "x", "assignee": "outsider"},
                           format="json")
    assert response.status_code == 400
    assert _field_error(response, "assignee")["code"] == "not_a_member"
    assert Ticket.objects.count() == 0


def test_archived_project_takes_no_new_tickets(owner_client):
    client, project, _ = owner_client
    assert client.patch(f"/api/projects/{project.key}/", {"is_active": False}, format="json").status_code == 200
    response = client.post("/api/tickets/", {"project": project.key, "title": "x"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "project_archived"


def test_project_with_tickets_cannot_be_deleted(owner_client):
    client, project, _ = owner_client
    TicketFactory(project=project)
    response = client.delete(f"/api/projects/{project.key}/")
    assert response.status_code == 409 and response.json()["code"] == "project_not_empty"
    assert Project.objects.filter(pk=project.pk).exists()


def test_non_json_body_is_a_clear_400(owner_client):
    client = owner_client[0]
    response = client.post("/api/tickets/", data="{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"


def test_wrong_types_are_400_not_500(owner_client):
    client, project, _ = owner_client
    for payload in ({"project": ["MNX"], "title": "x"}, {"project": "MNX", "title": {"a": 1}},
                    {"project": 12, "title": "x"}):
        response = client.post("/api/tickets/", payload, format="json")
        assert response.status_code == 400, payload
    ticket = TicketFactory(project=project)
    for payload in ({"ticket": True, "work_date": "2026-10-01", "minutes": 5},
                    {"ticket": ticket.key, "work_date": "2026-10-01", "minutes": "many"},
                    {"ticket": ticket.key, "work_date": "2026-10-01", "minutes": 5, "user": ["x"]}):
        response = client.post("/api/time-entries/", payload, format="json")
        assert response.status_code == 400, payload
    assert TimeEntry.objects.count() == 0
