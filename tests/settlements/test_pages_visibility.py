"""What a reader of only some of a settlement's projects sees on its detail page: the other
projects by key only (no name, no link), and no keys of their tickets in the history."""

import pytest

from settlements import services
from tests.factories import TicketFactory, UserFactory
from tests.settlements.test_pages import custom_role, detail_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def mnx_reader(mnx):
    return custom_role(UserFactory(username="mnx-reader"), [mnx], ["tickets:read", "settlements:read"], slug="reader")


@pytest.fixture
def acme_ticket_linked_and_unlinked(settlement, owner, acme):
    acme.name = "Secret Customer Corp"
    acme.save()
    ticket = TicketFactory(project=acme, title="Hidden work")
    services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    services.settlement_unlink_ticket(actor=owner, settlement=settlement, ticket=ticket)
    services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    return ticket


def test_unreadable_projects_show_their_key_only(client, mnx_reader, settlement, acme_ticket_linked_and_unlinked,
                                                 mnx):
    client.force_login(mnx_reader)
    html = client.get(detail_url(settlement)).content.decode()
    assert "Secret Customer Corp" not in html and "/dashboard/projects/ACME/" not in html
    assert f"/dashboard/projects/{mnx.key}/settlements/" in html and mnx.name in html


def test_history_keeps_keys_of_unreadable_tickets_to_itself(client, mnx_reader, owner, settlement, linked,
                                                            acme_ticket_linked_and_unlinked):
    client.force_login(mnx_reader)
    html = client.get(detail_url(settlement)).content.decode()
    assert acme_ticket_linked_and_unlinked.key not in html
    assert html.count("a ticket of a project you cannot read") == 3
    assert linked.key in html  # readable tickets are named as before
    client.force_login(owner)
    assert acme_ticket_linked_and_unlinked.key in client.get(detail_url(settlement)).content.decode()


def test_project_settlements_accept_a_lower_case_key(client, owner, mnx, settlement):
    client.force_login(owner)
    assert client.get(f"/dashboard/projects/{mnx.key.lower()}/settlements/").status_code == 200
