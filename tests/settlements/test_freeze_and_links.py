"""Freezing tickets on send (through the API, the admin and the services), status-only changes,
unfreezing on revert; linking rules; ticket search; settlement data hidden without permission."""

from datetime import date

import pytest
from django.test import Client

from core.errors import EditBlocked
from settlements import services
from settlements.guards import TICKET_FROZEN_HIDDEN_MESSAGE, is_ticket_frozen
from tests.factories import ExpenseFactory, ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tickets import services as ticket_services
from tickets.models import Ticket, TimeEntry

pytestmark = pytest.mark.django_db


def _send(owner, settlement):
    return services.settlement_transition(actor=owner, settlement=settlement, status="sent")


def test_send_freezes_and_draft_unfreezes(owner, settlement, linked):
    assert not is_ticket_frozen(linked)
    _send(owner, settlement)
    assert is_ticket_frozen(linked)
    services.settlement_transition(actor=owner, settlement=settlement, status="paid")
    assert is_ticket_frozen(linked)
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    services.settlement_transition(actor=owner, settlement=settlement, status="draft")
    assert not is_ticket_frozen(linked)
    ticket_services.ticket_update(actor=owner, ticket=linked, changes={"title": "Editable again"})


def test_frozen_ticket_through_the_api(client_for, owner, settlement, linked):
    entry = TimeEntryFactory(ticket=linked, user=owner)
    expense = ExpenseFactory(ticket=linked, user=owner)
    _send(owner, settlement)
    client = client_for(owner)
    url = f"/api/tickets/{linked.key}/"
    attempts = [
        client.patch(url, {"title": "x"}, format="json"),
        client.patch(url, {"priority": "high", "status": "done"}, format="json"),
        client.delete(url),
        client.post("/api/time-entries/", {"ticket": linked.key, "work_date": "2026-10-02", "minutes": 5},
                    format="json"),
        client.patch(f"/api/time-entries/{entry.pk}/", {"minutes": 5}, format="json"),
        client.delete(f"/api/time-entries/{entry.pk}/"),
        client.post("/api/expenses/", {"ticket": linked.key, "date": "2026-10-02", "description": "x",
                                       "amount": "5", "currency": "NOK"}, format="json"),
        client.patch(f"/api/expenses/{expense.pk}/", {"amount": "1"}, format="json"),
        client.delete(f"/api/expenses/{expense.pk}/"),
    ]
    for response in attempts:
        assert response.status_code == 403, response.content
        body = response.json()
        assert body["code"] == "ticket_frozen" and body["settlement"] == settlement.display_number
        assert settlement.display_number in body["detail"]
    linked.refresh_from_db()
    assert linked.title == "Login fails" and TimeEntry.objects.filter(ticket=linked).count() == 1
    response = client.patch(url, {"status": "done"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "done"
    assert response.json()["is_frozen"] is True


def test_moving_an_entry_onto_a_frozen_ticket_is_refused(client_for, owner, settlement, linked, mnx):
    other = TicketFactory(project=mnx)
    entry = TimeEntryFactory(ticket=other, user=owner)
    _send(owner, settlement)
    response = client_for(owner).patch(f"/api/time-entries/{entry.pk}/", {"ticket": linked.key}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "ticket_frozen"


def test_frozen_ticket_through_the_admin(owner, settlement, linked):
    owner.is_staff = True
    owner.save()
    _send(owner, settlement)
    client = Client()
    client.force_login(owner)
    response = client.post(f"/admin/tickets/ticket/{linked.pk}/delete/", {"post": "yes"}, follow=True)
    assert Ticket.objects.filter(pk=linked.pk).exists()
    assert "frozen" in response.content.decode()
    response = client.post("/admin/tickets/timeentry/add/", {
        "ticket": linked.pk, "user": owner.pk, "work_date": "2026-10-03", "minutes": 30,
        "activity": "development", "billable": "on"}, follow=True)
    assert not TimeEntry.objects.filter(ticket=linked).exists()
    assert "frozen" in response.content.decode()


def test_frozen_message_hides_the_settlement_from_users_without_settlement_rights(owner, settlement, linked, mnx):
    member = UserFactory(username="m")
    grant(member, mnx, "member")
    _send(owner, settlement)
    with pytest.raises(EditBlocked) as refused:
        ticket_services.ticket_update(actor=member, ticket=linked, changes={"title": "x"})
    assert refused.value.message == TICKET_FROZEN_HIDDEN_MESSAGE.format(ticket=linked.key)
    assert "settlement" not in refused.value.extra


def test_ticket_payloads_carry_settlement_data_only_with_settlement_read(client_for, owner, settlement, linked, mnx):
    member = UserFactory(username="m")
    grant(member, mnx, "member")
    _send(owner, settlement)
    for url in (f"/api/tickets/{linked.key}/", "/api/tickets/"):
        body = client_for(member).get(url).json()
        row = body["results"][0] if "results" in body else body
        assert "settlements" not in row and "is_frozen" not in row and "ROZ" not in str(body)
    row = client_for(owner).get(f"/api/tickets/{linked.key}/").json()
    assert row["is_frozen"] is True
    assert row["settlements"] == [{"id": settlement.pk, "number": "ROZ-1", "name": "October", "status": "sent"}]


def test_ticket_list_with_settlement_data_has_constant_queries(client_for, owner, settlement, mnx,
                                                               django_assert_max_num_queries):
    for _ in range(15):
        services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=TicketFactory(project=mnx))
    client = client_for(owner)
    for size in (1, 15):
        with django_assert_max_num_queries(4):
            rows = client.get("/api/tickets/", {"page_size": size}).json()["results"]
        assert len(rows) == size and all(row["settlements"] for row in rows)


# --- Linking ----------------------------------------------------------------------------------

def test_link_by_key_or_id_and_unlink(client_for, owner, settlement, ticket):
    client = client_for(owner)
    url = f"/api/settlements/{settlement.pk}/tickets/"
    response = client.post(url, {"ticket": ticket.key}, format="json")
    assert response.status_code == 201 and response.json()["key"] == ticket.key
    assert client.post(url, {"ticket": ticket.pk}, format="json").json()["code"] == "already_linked"
    assert [t["key"] for t in client.get(url).json()] == [ticket.key]
    assert client.delete(f"{url}{ticket.key}/").status_code == 204
    assert client.delete(f"{url}{ticket.key}/").json()["code"] == "not_linked"
    kinds = list(settlement.events.values_list("kind", flat=True))
    assert kinds == ["created", "ticket_linked", "ticket_unlinked"]


def test_link_rules(client_for, owner, settlement, ticket, mnx):
    client = client_for(owner)
    url = f"/api/settlements/{settlement.pk}/tickets/"
    outsider = TicketFactory(project=ProjectFactory(key="ELSE"))
    grant(owner, outsider.project, "owner")
    response = client.post(url, {"ticket": outsider.key}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "ticket_not_in_settlement_projects"
    invisible = TicketFactory(project=ProjectFactory(key="HIDDEN"))
    response = client.post(url, {"ticket": invisible.key}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "does_not_exist"
    _send(owner, settlement)
    response = client.post(url, {"ticket": ticket.key}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "settlement_not_draft"


def test_overlapping_periods_are_refused_naming_the_other(client_for, owner, settlement, linked, mnx):
    client = client_for(owner)
    overlapping = services.settlement_create(actor=owner, name="Mid Oct–Nov", period_start=date(2026, 10, 31),
                                             period_end=date(2026, 11, 30), projects=[mnx])
    response = client.post(f"/api/settlements/{overlapping.pk}/tickets/", {"ticket": linked.key}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "overlapping_settlement" and body["settlement"] == settlement.display_number
    assert settlement.display_number in body["detail"]
    separate = services.settlement_create(actor=owner, name="November", period_start=date(2026, 11, 1),
                                          period_end=date(2026, 11, 30), projects=[mnx])
    assert client.post(f"/api/settlements/{separate.pk}/tickets/", {"ticket": linked.key},
                       format="json").status_code == 201
    # Stretching a period over another settlement's is refused too.
    response = client.patch(f"/api/settlements/{separate.pk}/", {"period_start": "2026-10-15"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "overlapping_settlement"


def test_removing_a_project_with_linked_tickets_is_refused(client_for, owner, settlement, linked):
    response = client_for(owner).patch(f"/api/settlements/{settlement.pk}/", {"projects": ["ACME"]}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "project_has_linked_tickets" and response.json()["tickets"] == [linked.key]
    assert client_for(owner).patch(f"/api/settlements/{settlement.pk}/", {"projects": ["MNX"]},
                                   format="json").status_code == 200


def test_search_tickets(client_for, owner, settlement, mnx, acme):
    a1 = TicketFactory(project=acme, title="Invoice 100% wrong")
    m1 = TicketFactory(project=mnx, title="invoice_export")
    m2 = TicketFactory(project=mnx, title="Other")
    TicketFactory(project=ProjectFactory(key="ZZZ"), title="invoice elsewhere")
    services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=m2)
    client = client_for(owner)

    def search(q):
        return [t["key"] for t in client.get(f"/api/settlements/{settlement.pk}/search-tickets/", {"q": q}).json()]

    assert search("invoice") == [a1.key, m1.key]  # ordered by project key, number
    assert search(m1.key) == [m1.key]
    assert (a1.number, m1.number) == (1, 1)
    assert search("1") == [a1.key, m1.key]  # bare number in both projects ("100%" matches too)
    assert search("100%") == [a1.key]
    assert search("_") == [m1.key]
    assert search("%") == [a1.key]
    assert search("Other") == []  # already linked
    for _ in range(25):
        TicketFactory(project=mnx, title="bulk")
    assert len(search("bulk")) == 20


def test_cross_project_create_needs_write_in_every_project(client_for, mnx, acme):
    from rbac import services as rbac_services

    user = UserFactory(username="u")
    boss = UserFactory(username="boss", is_superuser=True)
    rbac_services.role_create(actor=boss, project=mnx, slug="biller", name="Biller",
                              permissions=["tickets:read", "settlements:read", "settlements:write"])
    grant(user, mnx, "biller")
    grant(user, acme, "admin")  # Admin has settlements:write too
    grant(user, acme, "member")  # ... but now only tickets rw in ACME
    client = client_for(user)
    payload = {"name": "Both", "period_start": "2026-10-01", "period_end": "2026-10-31", "projects": ["MNX", "ACME"]}
    response = client.post("/api/settlements/", payload, format="json")
    assert response.status_code == 403 and response.json()["projects"] == ["ACME"]
    response = client.post("/api/settlements/", {**payload, "projects": ["MNX"]}, format="json")
    assert response.status_code == 201 and response.json()["number"].startswith("ROZ-")


def test_linked_tickets_of_unreadable_projects_are_not_listed(client_for, owner, settlement, mnx, acme):
    acme_ticket = TicketFactory(project=acme)
    mnx_ticket = TicketFactory(project=mnx)
    for ticket in (acme_ticket, mnx_ticket):
        services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    reader = UserFactory(username="r")
    grant(reader, mnx, "admin")  # settlements:read in MNX only; nothing in ACME
    rows = client_for(reader).get(f"/api/settlements/{settlement.pk}/tickets/").json()
    assert [row["key"] for row in rows] == [mnx_ticket.key]


def test_a_ticket_in_a_draft_settlement_cannot_be_deleted_until_unlinked(client_for, owner, settlement, linked):
    client = client_for(owner)
    response = client.delete(f"/api/tickets/{linked.key}/")
    assert response.status_code == 409 and response.json()["code"] == "ticket_in_settlement"
    assert settlement.display_number in response.json()["detail"]
    services.settlement_unlink_ticket(actor=owner, settlement=settlement, ticket=linked)
    assert client.delete(f"/api/tickets/{linked.key}/").status_code == 204


def test_links_of_deleted_settlements_do_not_block_ticket_deletion(client_for, owner, settlement, linked):
    services.settlement_delete(actor=owner, settlement=settlement)
    assert client_for(owner).delete(f"/api/tickets/{linked.key}/").status_code == 204


def test_revert_to_draft_unfreezes_in_the_admin_too(owner, settlement, linked):
    owner.is_staff = True
    owner.save()
    _send(owner, settlement)
    services.settlement_transition(actor=owner, settlement=settlement, status="draft")
    client = Client()
    client.force_login(owner)
    response = client.post("/admin/tickets/timeentry/add/", {
        "ticket": linked.pk, "user": owner.pk, "work_date": "2026-10-03", "minutes": 30,
        "activity": "development", "billable": "on"})
    assert response.status_code == 302
    assert TimeEntry.objects.filter(ticket=linked).count() == 1


def test_edits_are_recorded_with_before_and_after(client_for, owner, settlement):
    response = client_for(owner).patch(f"/api/settlements/{settlement.pk}/", {"name": "October (final)",
                                                                              "notes": "Signed"}, format="json")
    assert response.status_code == 200
    event = settlement.events.get(kind="updated")
    assert (event.actor, event.before["name"], event.after["name"]) == (owner, "October", "October (final)")
    assert event.after["notes"] == "Signed" and event.after["projects"] == ["ACME", "MNX"]
