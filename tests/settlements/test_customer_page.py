"""The customer page behind a share link (/s/<token>/): what it shows, its headers (CSP, noindex,
no-referrer, no-store), the acceptance form (CSRF, recorded once, logged), downloads, and the one
404 page for unknown, draft, revoked and expired links — all without a login."""

import re
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from settlements import services
from settlements.models import SettlementAcceptance
from tests.factories import ExpenseFactory, TimeEntryFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\nreport\n"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")


@pytest.fixture
def shared(owner, settlement, linked, priced):
    """A sent settlement with an hour and a half of work, an expense and a report; its token."""
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 10, 5), minutes=90)
    ExpenseFactory(ticket=linked, user=owner, date=date(2026, 10, 6), amount="250.00")
    priced()
    services.attachment_upload(actor=owner, settlement=settlement, uploaded=SimpleUploadedFile("Report.pdf", PDF),
                               category="report", state="signed")
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    _, token = services.share_link_create(actor=owner, settlement=settlement)
    return token


def page_url(token):
    return reverse("customer:settlement", kwargs={"token": token})


def accept_url(token):
    return reverse("customer:accept", kwargs={"token": token})


def assert_private_headers(response):
    assert response["Content-Security-Policy"] == CSP
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "private, no-store"


def assert_minimal_layout(html: str):
    """Nothing that leads into the app, nothing the CSP would block."""
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert "/dashboard/" not in html and "/admin/" not in html and "/api/" not in html
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert "hx-" not in html
    assert "{#" not in html and "{%" not in html  # no template syntax leaking as text


def test_the_page_refines_the_referrer_policy_so_its_own_form_keeps_its_origin(client, shared):
    """Under the header's no-referrer a browser posts the acceptance with "Origin: null", which
    Django's CSRF check refuses; the page's own policy keeps the origin for same-origin requests
    and still sends nothing elsewhere."""
    html = client.get(page_url(shared)).content.decode()
    assert '<meta name="referrer" content="same-origin">' in html


def test_page_shows_the_settlement_without_login(client, shared, settlement, linked):
    response = client.get(page_url(shared))
    assert response.status_code == 200
    html = response.content.decode()
    assert "ROZ-1" in html and "October" in html and "10/01/2026 – 10/31/2026" in html
    assert '<span class="badge sent" id="settlement-status">Sent</span>' in html
    assert "Project ACME, Project MNX" in html
    row = re.search(rf'<tr data-ticket="{linked.key}">(.*?)</tr>', html, re.S).group(1)
    assert "Login fails" in row and "1.50" in row and "1,750.00 NOK" in row
    totals = re.search(r'<tr id="totals">(.*?)</tr>', html, re.S).group(1)
    assert "1.50" in totals and "1,750.00 NOK" in totals
    attachment = settlement.attachments.get()
    download_url = reverse("customer:attachment", kwargs={"token": shared, "attachment_id": attachment.pk})
    assert f'href="{download_url}"' in html and "Report · Signed" in html
    assert '<label for="acceptance-name">Your name' in html and ">Confirm acceptance</button>" in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_page_headers_and_minimal_layout(client, shared):
    response = client.get(page_url(shared))
    assert_private_headers(response)
    assert_minimal_layout(response.content.decode())


def test_attachments_download_through_the_token_only(client, owner, shared, settlement, mnx):
    attachment = settlement.attachments.get()
    url = reverse("customer:attachment", kwargs={"token": shared, "attachment_id": attachment.pk})
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Robots-Tag"] == "noindex, nofollow"
    other = services.settlement_create(actor=owner, name="Other", period_start=date(2027, 1, 1),
                                       period_end=date(2027, 1, 31), projects=[mnx])
    foreign = services.attachment_upload(actor=owner, settlement=other, uploaded=SimpleUploadedFile("x.pdf", PDF))
    wrong = client.get(reverse("customer:attachment", kwargs={"token": shared, "attachment_id": foreign.pk}))
    assert wrong.status_code == 404
    unknown = client.get(reverse("customer:attachment", kwargs={"token": "nope", "attachment_id": attachment.pk}))
    assert unknown.status_code == 404


def test_acceptance_is_recorded_logged_and_shown(client, shared, settlement):
    response = client.post(accept_url(shared), {"name": "  Jane Customer "})
    assert response.status_code == 302 and response["Location"] == page_url(shared)
    acceptance = SettlementAcceptance.objects.get(settlement=settlement)
    assert acceptance.accepted_by_name == "Jane Customer"
    event = settlement.events.get(kind="accepted")
    assert event.actor is None and event.actor_label == "customer: Jane Customer"

    html = client.get(page_url(shared)).content.decode()
    when = timezone.localtime(acceptance.accepted_at).strftime("%m/%d/%Y")
    recorded = re.search(r'<p class="alert alert-success" id="acceptance-recorded">(.*?)</p>', html, re.S).group(1)
    assert "Accepted by Jane Customer on" in recorded and when in recorded
    assert 'id="acceptance-form"' not in html


def test_staff_see_the_acceptance_on_the_dashboard(client, owner, shared, settlement):
    services.settlement_accept(token=shared, name="Jane Customer")
    client.force_login(owner)
    html = client.get(reverse("settlements:detail", args=[settlement.pk])).content.decode()
    assert "Accepted by Jane Customer on" in html
    assert re.search(r'data-event="accepted">.*?customer: Jane Customer', html, re.S)


def test_second_acceptance_shows_the_services_refusal(client, shared, settlement):
    services.settlement_accept(token=shared, name="First Person")
    response = client.post(accept_url(shared), {"name": "Second Person"})
    assert response.status_code == 409 and response["X-Error-Code"] == "already_accepted"
    html = response.content.decode()
    assert "already accepted by First Person" in html
    assert_private_headers(response)
    assert SettlementAcceptance.objects.get(settlement=settlement).accepted_by_name == "First Person"


def test_acceptance_needs_a_name(client, shared, settlement):
    response = client.post(accept_url(shared), {"name": "   "})
    assert response.status_code == 400 and 'id="acceptance-name_error"' in response.content.decode()
    assert not SettlementAcceptance.objects.exists()


def test_acceptance_is_csrf_protected(shared, settlement):
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(accept_url(shared), {"name": "Mallory"}).status_code == 403
    assert not SettlementAcceptance.objects.exists()
    html = strict.get(page_url(shared)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert strict.post(accept_url(shared), {"name": "Jane", "csrfmiddlewaretoken": token}).status_code == 302
    assert SettlementAcceptance.objects.filter(accepted_by_name="Jane").exists()


def test_acceptance_only_by_post(client, shared):
    assert client.get(accept_url(shared)).status_code == 405


def _assert_not_found(client, token):
    response = client.get(page_url(token))
    assert response.status_code == 404
    html = response.content.decode()
    assert "This link is not available" in html and "ROZ-" not in html
    assert_private_headers(response)
    assert_minimal_layout(html)
    assert client.post(accept_url(token), {"name": "Jane"}).status_code == 404


def test_unknown_token_is_404(client, db):
    _assert_not_found(client, "not-a-real-token")


def test_draft_again_is_404(client, owner, shared, settlement):
    services.settlement_transition(actor=owner, settlement=settlement, status="draft")
    _assert_not_found(client, shared)


def test_revoked_link_is_404(client, owner, shared, settlement):
    services.share_link_revoke(actor=owner, link=settlement.share_links.get())
    _assert_not_found(client, shared)
    assert not SettlementAcceptance.objects.exists()


def test_expired_link_is_404(client, owner, shared, settlement):
    link = settlement.share_links.get()
    link.expires_at = timezone.now() - timedelta(minutes=1)
    link.save(update_fields=["expires_at"])
    _assert_not_found(client, shared)


def test_paid_settlement_stays_visible(client, owner, shared, settlement):
    services.settlement_transition(actor=owner, settlement=settlement, status="paid")
    response = client.get(page_url(shared))
    assert response.status_code == 200 and '<span class="badge paid" id="settlement-status">Paid</span>' in \
        response.content.decode()

