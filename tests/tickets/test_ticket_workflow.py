"""Tickets through the API: numbering, lookup by key, status-only path, concurrency of numbering."""

import pytest

from tests.factories import ProjectFactory, UserFactory, grant
from tests.helpers import race
from tickets import services
from tickets.models import Project, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client_for):
    user = UserFactory(username="m")
    project = ProjectFactory(key="MNX")
    grant(user, project, "member")
    return client_for(user), project, user


def test_numbers_are_per_project_and_keys_look_up_tickets(member):
    client, project, _ = member
    other = ProjectFactory(key="ACME")
    grant(member[2], other, "member")
    keys = [client.post("/api/tickets/", {"project": p, "title": "t"}, format="json").json()["key"]
            for p in ("MNX", "MNX", "ACME", "MNX")]
    assert keys == ["MNX-1", "MNX-2", "ACME-1", "MNX-3"]
    assert client.get("/api/tickets/MNX-2/").json()["number"] == 2
    assert client.get("/api/tickets/mnx-2/").json()["key"] == "MNX-2"
    ticket_id = Ticket.objects.get(project=project, number=2).pk
    assert client.get(f"/api/tickets/{ticket_id}/").json()["key"] == "MNX-2"


def test_patch_with_only_status_takes_the_status_path(member, monkeypatch):
    client, project, user = member
    ticket = services.ticket_create(actor=user, project=project, title="t")
    calls = []
    original = services.ticket_change_status
    monkeypatch.setattr(services, "ticket_change_status", lambda **kw: calls.append(kw) or original(**kw))
    response = client.patch(f"/api/tickets/{ticket.key}/", {"status": "review"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "review"
    assert len(calls) == 1
    client.patch(f"/api/tickets/{ticket.key}/", {"title": "new", "status": "done"}, format="json")
    assert len(calls) == 1


def test_full_update_and_delete_rules(member, client_for):
    client, project, user = member
    ticket = services.ticket_create(actor=user, project=project, title="t")
    response = client.put(f"/api/tickets/{ticket.key}/", {"project": "MNX", "title": "T2", "priority": "high",
                                                          "status": "todo", "assignee": "m"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["assignee"] == "m" and response.json()["project"] == "MNX"
    assert client.delete(f"/api/tickets/{ticket.key}/").status_code == 403


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_ticket_creation_gets_gapless_unique_numbers():
    user = UserFactory(username="m")
    project = ProjectFactory(key="RACE")
    grant(user, project, "member")
    def create(n):
        for i in range(5):
            services.ticket_create(actor=user, project=project, title=f"{n}-{i}")
        return "ok"

    assert race(create, 8) == ["ok"] * 8
    numbers = sorted(Ticket.objects.filter(project=project).values_list("number", flat=True))
    assert numbers == list(range(1, 41))
    assert Project.objects.get(pk=project.pk).next_ticket_number == 41


@pytest.mark.postgres
def test_database_refuses_invalid_rows_even_past_the_services():
    from django.db import IntegrityError, transaction

    from tests.factories import TicketFactory, TimeEntryFactory
    from tickets.models import TimeEntry

    ticket = TicketFactory(project=ProjectFactory(key="DB"))
    entry = TimeEntryFactory(ticket=ticket)
    with pytest.raises(IntegrityError), transaction.atomic():
        TimeEntry.objects.filter(pk=entry.pk).update(minutes=1441)
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(project=ticket.project, number=ticket.number, title="dup")
