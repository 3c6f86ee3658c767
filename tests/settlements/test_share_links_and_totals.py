"""Share links and the customer JSON, acceptance, and the settlement totals selector."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from billing.selectors import settlement_totals
from settlements import services
from settlements.models import SettlementShareLink
from tests.factories import ExpenseFactory, TicketFactory, TimeEntryFactory

pytestmark = pytest.mark.django_db


def _share(client, settlement, **body):
    return client.post(f"/api/settlements/{settlement.pk}/share-links/", body, format="json")


def test_share_links_only_for_sent_or_paid(client_for, owner, settlement):
    response = _share(client_for(owner), settlement)
    assert response.status_code == 409 and response.json()["code"] == "settlement_not_sent"


def test_customer_page_json_acceptance_and_revocation(client_for, api_client, owner, settlement, linked, priced):
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 10, 5), minutes=90)
    priced()
    services.attachment_upload(actor=owner, settlement=settlement,
                               uploaded=SimpleUploadedFile("report.pdf", b"%PDF-1.4\nreport"))
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    created = _share(client_for(owner), settlement).json()
    token = created["token"]
    assert created["url"].endswith(f"/api/public/settlements/{token}/")
    assert SettlementShareLink.objects.get().digest != token  # stored hashed

    page = api_client.get(f"/api/public/settlements/{token}/")
    assert page.status_code == 200
    body = page.json()
    assert body["number"] == "ROZ-1" and body["status"] == "sent" and body["acceptance"] is None
    assert body["tickets"] == [{"key": linked.key, "title": "Login fails", "minutes": 90, "hours": "1.50",
                                "amounts": {"NOK": "1500.00"}}]
    assert body["totals"]["amounts"] == {"NOK": "1500.00"}
    attachment_id = body["attachments"][0]["id"]
    download = api_client.get(f"/api/public/settlements/{token}/attachments/{attachment_id}/download/")
    assert b"".join(download.streaming_content) == b"%PDF-1.4\nreport"

    accepted = api_client.post(f"/api/public/settlements/{token}/accept/", {"name": "Jane Customer"}, format="json")
    assert accepted.status_code == 201 and accepted.json()["acceptance"]["name"] == "Jane Customer"
    again = api_client.post(f"/api/public/settlements/{token}/accept/", {"name": "Jane"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_accepted"
    event = settlement.events.get(kind="accepted")
    assert event.actor is None and event.actor_label == "customer: Jane Customer"

    link_id = created["id"]
    assert client_for(owner).delete(f"/api/settlements/{settlement.pk}/share-links/{link_id}/").status_code == 204
    assert api_client.get(f"/api/public/settlements/{token}/").status_code == 404
    kinds = list(settlement.events.values_list("kind", flat=True))
    assert "shared" in kinds and kinds[-1] == "share_revoked"


def test_draft_expired_and_unknown_links_are_404(client_for, api_client, owner, settlement):
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    token = _share(client_for(owner), settlement).json()["token"]
    expiring = _share(client_for(owner), settlement,
                      expires_at=(timezone.now() + timedelta(hours=1)).isoformat()).json()
    SettlementShareLink.objects.filter(pk=expiring["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_client.get(f"/api/public/settlements/{expiring['token']}/").status_code == 404
    assert api_client.get("/api/public/settlements/not-a-token/").status_code == 404
    services.settlement_transition(actor=owner, settlement=settlement, status="draft")
    assert api_client.get(f"/api/public/settlements/{token}/").status_code == 404
    response = api_client.post(f"/api/public/settlements/{token}/accept/", {"name": "x"}, format="json")
    assert response.status_code == 404


def test_totals_count_only_billable_work_inside_each_settlements_period(owner, mnx, acme, settlement, linked,
                                                                      priced):
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 10, 1), minutes=60)
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 10, 31), minutes=30)
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 11, 1), minutes=600)  # next period
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 10, 10), minutes=45, billable=False)
    ExpenseFactory(ticket=linked, user=owner, date=date(2026, 10, 2), amount=Decimal("100.10"), currency="NOK")
    ExpenseFactory(ticket=linked, user=owner, date=date(2026, 10, 3), amount=Decimal("20.00"), currency="EUR")
    other = TicketFactory(project=acme)
    services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=other)
    TimeEntryFactory(ticket=other, user=owner, work_date=date(2026, 10, 15), minutes=7)
    november = services.settlement_create(actor=owner, name="November", period_start=date(2026, 11, 1),
                                          period_end=date(2026, 11, 30), projects=[mnx])
    services.settlement_link_ticket(actor=owner, settlement=november, ticket=linked)
    run = priced()
    assert run.unmatched == 1  # the EUR expense: the client bills in NOK

    totals = settlement_totals([settlement.pk, november.pk])
    october = totals[settlement.pk]
    assert october.tickets[linked.pk].minutes == 90
    assert october.tickets[linked.pk].amounts == {"NOK": Decimal("1600.10")}
    # 7 minutes are 0.1167 h, priced per line: 116.70
    assert october.tickets[other.pk].as_dict() == {"minutes": 7, "hours": "0.12", "amounts": {"NOK": "116.70"}}
    assert october.total.as_dict() == {"minutes": 97, "hours": "1.62", "amounts": {"NOK": "1716.80"}}
    assert totals[november.pk].total.as_dict() == {"minutes": 600, "hours": "10.00", "amounts": {"NOK": "10000.00"}}


def test_settlement_detail_and_list_show_totals(client_for, owner, settlement, linked, priced):
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 10, 1), minutes=120)
    priced()
    client = client_for(owner)
    assert client.get(f"/api/settlements/{settlement.pk}/").json()["totals"]["amounts"] == {"NOK": "2000.00"}
    row = client.get("/api/settlements/").json()["results"][0]
    assert row["totals"]["hours"] == "2.00" and row["ticket_count"] == 1
    tickets = client.get(f"/api/settlements/{settlement.pk}/tickets/").json()
    assert tickets[0]["totals"]["minutes"] == 120
