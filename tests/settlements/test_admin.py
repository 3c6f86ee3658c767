"""The settlement admin follows the same rules: visibility, write in every project, draft-only
edits, transitions as actions through the workflow service."""

import pytest
from django.test import Client

from settlements.models import Settlement
from tests.factories import ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db


def _login(user) -> Client:
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_admin_creates_edits_and_transitions_through_the_services(owner, settlement, linked, mnx):
    client = _login(owner)
    response = client.post("/admin/settlements/settlement/add/", {
        "name": "Created in admin", "period_start": "2026-12-01", "period_end": "2026-12-31",
        "project_choices": [mnx.pk], "notes": "",
        **{f"{prefix}-{key}": value for prefix in ("settlement_tickets", "attachments", "share_links", "events")
           for key, value in (("TOTAL_FORMS", 0), ("INITIAL_FORMS", 0), ("MIN_NUM_FORMS", 0),
                              ("MAX_NUM_FORMS", 1000))},
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    created = Settlement.objects.get(name="Created in admin")
    assert created.display_number == "ROZ-2" and list(created.projects.all()) == [mnx]
    assert list(created.events.values_list("kind", flat=True)) == ["created"]

    changelist = "/admin/settlements/settlement/"
    response = client.post(changelist, {"action": "mark_sent", "_selected_action": [settlement.pk]}, follow=True)
    settlement.refresh_from_db()
    assert settlement.status == "sent" and settlement.sent_at is not None
    page = client.get(f"/admin/settlements/settlement/{settlement.pk}/change/").content.decode()
    assert 'name="name"' not in page  # read-only once sent
    client.post("/admin/settlements/settlement/", {"action": "mark_paid", "_selected_action": [settlement.pk]})
    response = client.post("/admin/settlements/settlement/",
                           {"action": "mark_draft", "_selected_action": [settlement.pk]}, follow=True)
    settlement.refresh_from_db()
    assert settlement.status == "paid"  # paid → draft is not a transition
    assert "cannot go from paid to draft" in response.content.decode()


def test_admin_shows_only_readable_settlements_and_refuses_deleting_without_rights(settlement, mnx, acme):
    reader = UserFactory(username="reader")
    grant(reader, mnx, "admin")  # settlements read/write in MNX only, no delete
    client = _login(reader)
    listing = client.get("/admin/settlements/settlement/").content.decode()
    assert "October" in listing
    outsider = UserFactory(username="outsider")
    grant(outsider, ProjectFactory(key="ZZZ"), "owner")
    assert "October" not in _login(outsider).get("/admin/settlements/settlement/").content.decode()
    # Admin in MNX but nothing in ACME: may not change the cross-project settlement.
    response = client.post(f"/admin/settlements/settlement/{settlement.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    settlement.refresh_from_db()
    assert settlement.is_active


def test_admin_lists_only_linked_tickets_the_reader_can_read(owner, settlement, mnx, acme):
    from settlements import services
    from tests.factories import TicketFactory

    for project, title in ((mnx, "Visible MNX work"), (acme, "Secret ACME work")):
        services.settlement_link_ticket(actor=owner, settlement=settlement,
                                        ticket=TicketFactory(project=project, title=title))
    reader = UserFactory(username="reader")
    grant(reader, mnx, "admin")  # reads settlements and tickets of MNX only
    page = _login(reader).get(f"/admin/settlements/settlement/{settlement.pk}/change/").content.decode()
    assert "Visible MNX work" in page and "Secret ACME work" not in page
    assert "Secret ACME work" in _login(owner).get(f"/admin/settlements/settlement/{settlement.pk}/change/"
                                                    ).content.decode()
