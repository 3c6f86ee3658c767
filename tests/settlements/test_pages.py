"""The settlement pages of the dashboard, through the test client with a logged-in user: lists with
filters and pagination, create/edit/delete, the detail page and its HTMX actions (autocomplete,
link/unlink, attachments, status buttons, share links), visibility, and bounded query counts."""

import re
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from settlements import services
from settlements.models import Settlement, SettlementAttachment, SettlementShareLink
from tests.factories import ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
EXE = b"MZ\x90\x00" + b"\x00" * 64


# --- Helpers ------------------------------------------------------------------------------

def logged_in(client, user):
    client.force_login(user)
    return client


def custom_role(user, projects, permissions, slug="custom"):
    """Give `user` a project role with exactly `permissions` in each of `projects`."""
    from rbac import services as rbac_services

    boss = UserFactory(username="boss", is_superuser=True)
    for project in projects:
        rbac_services.role_create(actor=boss, project=project, slug=slug, name=slug.title(), permissions=permissions)
        grant(user, project, slug)
    return user


def make_settlement(owner, projects, name="S", start=date(2026, 10, 1), end=date(2026, 10, 31), status="draft"):
    settlement = services.settlement_create(actor=owner, name=name, period_start=start, period_end=end,
                                            projects=projects)
    for target in {"draft": [], "sent": ["sent"], "paid": ["sent", "paid"]}[status]:
        settlement = services.settlement_transition(actor=owner, settlement=settlement, status=target)
    return settlement


def detail_url(settlement, name="detail", *args):
    return reverse(f"settlements:{name}", args=[settlement.pk, *args])


def body(response) -> str:
    return response.content.decode()


def row_numbers(response) -> list[str]:
    return re.findall(r'data-settlement="([^"]+)"', body(response))


def upload(client, settlement, name, content, htmx=True, **fields):
    data = {"file": SimpleUploadedFile(name, content), "category": "other", "state": "draft", **fields}
    return client.post(detail_url(settlement, "attachment-upload"), data, headers=HTMX if htmx else {})


@pytest.fixture
def reader(mnx, acme):
    """settlements:read (and tickets:read) in both projects, nothing more."""
    return custom_role(UserFactory(username="reader"), [mnx, acme], ["tickets:read", "settlements:read"],
                       slug="reader")


# --- Lists --------------------------------------------------------------------------------

def test_list_shows_only_readable_settlements_with_their_columns(client, owner, mnx, acme, settlement, linked,
                                                                 priced):
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 10, 5), minutes=90)
    priced()
    services.attachment_upload(actor=owner, settlement=settlement, uploaded=SimpleUploadedFile("a.pdf", PDF))
    other = ProjectFactory(key="OTH")
    stranger = UserFactory(username="stranger")
    grant(stranger, other, "owner")
    hidden = make_settlement(stranger, [other], name="Hidden one")

    response = logged_in(client, owner).get(reverse("settlements:list"))
    assert response.status_code == 200
    html = body(response)
    assert row_numbers(response) == [settlement.display_number]
    assert hidden.name not in html and hidden.display_number not in html
    assert f'href="{detail_url(settlement)}"' in html and "October" in html
    assert "10/01/2026 – 10/31/2026" in html  # SHORT_DATE_FORMAT in English
    assert '<span class="badge draft">Draft</span>' in html
    assert ">ACME</a>, <a" in html and ">MNX</a>" in html
    row = re.search(r'<tr data-settlement="ROZ-1">(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r'<td class="num">(.*?)</td>', row, re.S)
    assert cells == ["1", "1", "1.50 h<br>1,500.00 NOK"]


def test_users_without_settlement_read_see_nothing(client, mnx, settlement):
    member = UserFactory(username="member")
    grant(member, mnx, "member")  # tickets only
    response = logged_in(client, member).get(reverse("settlements:list"))
    assert response.status_code == 200 and row_numbers(response) == []
    assert 'id="new-settlement"' not in body(response)
    assert 'value="MNX"' not in body(response)  # not offered as a filter either


def test_polish_alias_is_the_same_view(client, owner, settlement):
    response = logged_in(client, owner).get(reverse("settlements:list-pl"))
    assert reverse("settlements:list-pl") == "/dashboard/rozliczenia/"
    assert row_numbers(response) == [settlement.display_number]


def test_filters_by_projects_status_and_overlapping_dates(client, owner, mnx, acme):
    third = ProjectFactory(key="THR")
    grant(owner, third, "owner")
    only_mnx = make_settlement(owner, [mnx], name="mnx sept", start=date(2026, 9, 1), end=date(2026, 9, 30))
    only_acme = make_settlement(owner, [acme], name="acme oct", start=date(2026, 10, 1), end=date(2026, 10, 31),
                                status="sent")
    only_third = make_settlement(owner, [third], name="thr nov", start=date(2026, 11, 1), end=date(2026, 11, 30),
                                 status="paid")
    client = logged_in(client, owner)
    url = reverse("settlements:list")

    def numbers(**params):
        return sorted(row_numbers(client.get(url, params)))

    assert numbers(projects=["MNX", "ACME"]) == sorted([only_mnx.display_number, only_acme.display_number])
    assert numbers(projects="THR") == [only_third.display_number]
    assert numbers(status="sent") == [only_acme.display_number]
    assert numbers(status="paid", projects=["MNX"]) == []
    # Overlap: a period ending on the range's first day or starting on its last day counts.
    assert numbers(date_from="2026-09-30", date_to="2026-10-01") == sorted(
        [only_mnx.display_number, only_acme.display_number])
    assert numbers(date_from="2026-10-15") == sorted([only_acme.display_number, only_third.display_number])
    assert numbers(date_to="2026-09-15") == [only_mnx.display_number]
    response = client.get(url, {"date_from": "2026-12-01", "date_to": "2026-11-01"})
    assert "The end of the range must not be before its start." in body(response)


def test_project_filter_offers_and_accepts_only_readable_projects(client, mnx, acme):
    keeper = UserFactory(username="keeper")
    grant(keeper, mnx, "owner")
    grant(keeper, acme, "owner")
    make_settlement(keeper, [mnx], name="mine")
    make_settlement(keeper, [acme], name="theirs")
    user = UserFactory(username="u")
    grant(user, mnx, "admin")
    client = logged_in(client, user)
    page = client.get(reverse("settlements:list"))
    assert 'value="MNX"' in body(page) and 'value="ACME"' not in body(page)
    # A forged key is reported and ignored; the list still holds only readable settlements.
    forged = client.get(reverse("settlements:list"), {"projects": "ACME"})
    assert forged.status_code == 200 and "Select a valid choice" in body(forged)
    assert row_numbers(forged) == ["ROZ-1"]


def test_pagination_keeps_the_filters(client, owner, mnx, monkeypatch):
    monkeypatch.setattr("settlements.views.PAGE_SIZE", 2)
    for n in range(5):
        make_settlement(owner, [mnx], name=f"S{n}", start=date(2026, 1 + n, 1), end=date(2026, 1 + n, 28))
    client = logged_in(client, owner)
    first = client.get(reverse("settlements:list"), {"projects": "MNX"})
    assert row_numbers(first) == ["ROZ-5", "ROZ-4"]
    assert "Page 1 of 3" in body(first) and 'href="?projects=MNX&amp;page=2"' in body(first)
    last = client.get(reverse("settlements:list"), {"projects": "MNX", "page": 3})
    assert row_numbers(last) == ["ROZ-1"]
    assert row_numbers(client.get(reverse("settlements:list"), {"page": "99"})) == ["ROZ-1"]


def test_project_list_shows_that_projects_settlements_only(client, owner, mnx, acme):
    in_mnx = make_settlement(owner, [mnx], name="mnx")
    both = make_settlement(owner, [mnx, acme], name="both", start=date(2026, 11, 1), end=date(2026, 11, 30))
    make_settlement(owner, [acme], name="acme", start=date(2026, 12, 1), end=date(2026, 12, 31))
    response = logged_in(client, owner).get(reverse("settlements:project-list", args=["MNX"]))
    assert response.status_code == 200
    assert row_numbers(response) == [both.display_number, in_mnx.display_number]
    assert "Settlements of MNX" in body(response)
    assert f'{reverse("settlements:create")}?project=MNX' in body(response)


@pytest.mark.parametrize("role", [None, "member", "viewer"])
def test_project_list_is_404_without_settlement_read(client, mnx, role):
    user = UserFactory(username="u")
    if role:
        grant(user, mnx, role)
    client = logged_in(client, user)
    assert client.get(reverse("settlements:project-list", args=["MNX"])).status_code == 404
    assert client.get(reverse("settlements:project-list", args=["NOPE"])).status_code == 404


def test_anonymous_visitors_are_sent_to_login(client, settlement):
    for url in (reverse("settlements:list"), detail_url(settlement)):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# Session, user, navigation, the rows and their related data, totals: a fixed number of queries.
MAX_LIST_QUERIES = 15
MAX_DETAIL_QUERIES = 16


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_list_query_count_does_not_grow_with_rows(client, owner, mnx, acme):
    client = logged_in(client, owner)
    url = reverse("settlements:list") + "?projects=MNX&status=draft"

    def settlements_with_tickets(count, offset):
        for n in range(count):
            settlement = make_settlement(owner, [mnx, acme], name=f"S{n}", start=date(2020 + offset, 1, 1) +
                                         timedelta(days=n * 3), end=date(2020 + offset, 1, 2) + timedelta(days=n * 3))
            services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=TicketFactory(project=mnx))

    settlements_with_tickets(2, 0)
    few = _count_queries(client, url)
    settlements_with_tickets(18, 1)
    assert len(row_numbers(client.get(url))) == 20
    assert _count_queries(client, url) == few <= MAX_LIST_QUERIES


# --- Create, edit, delete -----------------------------------------------------------------

def _form_data(**overrides):
    return {"name": "November", "period_start": "2026-11-01", "period_end": "2026-11-30", "notes": "", **overrides}


def test_create_offers_only_projects_the_user_may_write(client, mnx, acme):
    user = custom_role(UserFactory(username="u"), [acme], ["tickets:read", "settlements:read"], slug="reader")
    grant(user, mnx, "admin")
    client = logged_in(client, user)
    form = client.get(reverse("settlements:create"))
    assert form.status_code == 200
    html = body(form)
    assert f'value="{mnx.pk}"' in html and f'value="{acme.pk}"' not in html
    for field in ("id_name", "id_period_start", "id_period_end", "id_projects", "id_notes"):
        assert f'<label for="{field}">' in html
    assert 'type="date"' in html

    forged = client.post(reverse("settlements:create"), _form_data(projects=[mnx.pk, acme.pk]))
    assert forged.status_code == 400 and "Select a valid choice" in body(forged)
    assert not Settlement.objects.exists()

    created = client.post(reverse("settlements:create"), _form_data(projects=[mnx.pk], notes="**Hello**"))
    settlement = Settlement.objects.get()
    assert created.status_code == 302 and created["Location"] == detail_url(settlement)
    assert settlement.name == "November" and list(settlement.projects.all()) == [mnx]
    assert list(settlement.events.values_list("kind", flat=True)) == ["created"]


def test_create_shows_service_and_form_errors(client, owner, mnx):
    client = logged_in(client, owner)
    wrong_order = client.post(reverse("settlements:create"),
                              _form_data(projects=[mnx.pk], period_start="2026-12-01"))
    assert wrong_order.status_code == 400 and wrong_order["X-Error-Code"] == "invalid"
    assert "The period must not end before it starts." in body(wrong_order)
    missing = client.post(reverse("settlements:create"), _form_data(name=""))
    assert missing.status_code == 400 and body(missing).count('class="field-error"') == 2
    assert not Settlement.objects.exists()


def test_create_is_refused_without_any_writable_project(client, reader):
    response = logged_in(client, reader).get(reverse("settlements:create"))
    assert response.status_code == 403 and response["X-Error-Code"] == "missing_permission"


def test_create_preselects_the_project_of_the_project_list(client, owner, mnx):
    html = body(logged_in(client, owner).get(reverse("settlements:create") + "?project=MNX"))
    assert re.search(rf'<option value="{mnx.pk}" selected>', html)


def test_edit_saves_through_the_service(client, owner, settlement, mnx):
    client = logged_in(client, owner)
    form = client.get(detail_url(settlement, "edit"))
    assert form.status_code == 200 and 'value="October"' in body(form) and 'value="2026-10-01"' in body(form)
    response = client.post(detail_url(settlement, "edit"), _form_data(
        name="October, corrected", period_start="2026-10-01", period_end="2026-10-31", projects=[mnx.pk]))
    assert response.status_code == 302
    settlement.refresh_from_db()
    assert settlement.name == "October, corrected" and list(settlement.projects.all()) == [mnx]
    event = settlement.events.get(kind="updated")
    assert event.actor == owner and event.before["name"] == "October"


def test_edit_conflicts_keep_the_form_with_status_409(client, owner, settlement, acme, linked, mnx):
    client = logged_in(client, owner)
    # Dropping MNX, which still has a linked ticket, is refused naming it.
    response = client.post(detail_url(settlement, "edit"), _form_data(projects=[acme.pk], period_start="2026-10-01",
                                                                      period_end="2026-10-31"))
    assert response.status_code == 409 and response["X-Error-Code"] == "project_has_linked_tickets"
    assert linked.key in body(response) and 'value="October"' not in body(response)  # the posted name is kept
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    sent = client.post(detail_url(settlement, "edit"), _form_data(projects=[mnx.pk, acme.pk]))
    assert sent.status_code == 409 and sent["X-Error-Code"] == "settlement_not_draft"


def test_edit_and_delete_are_refused_to_readers(client, reader, settlement):
    client = logged_in(client, reader)
    assert client.get(detail_url(settlement, "edit")).status_code == 403
    response = client.post(detail_url(settlement, "delete"))
    assert response.status_code == 403 and response["X-Error-Code"] == "missing_permission"
    detail = body(client.get(detail_url(settlement)))
    assert 'id="edit-settlement"' not in detail and 'id="delete-settlement"' not in detail


def test_delete_only_in_draft_with_confirmation(client, owner, settlement):
    client = logged_in(client, owner)
    detail = body(client.get(detail_url(settlement)))
    assert re.search(r'id="delete-settlement"\s+data-confirm="Delete settlement ROZ-1\?', detail)
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    refused = client.post(detail_url(settlement, "delete"))
    assert refused.status_code == 409 and refused["X-Error-Code"] == "settlement_not_draft"
    services.settlement_transition(actor=owner, settlement=settlement, status="draft")
    response = client.post(detail_url(settlement, "delete"))
    assert response.status_code == 302 and response["Location"] == reverse("settlements:list")
    settlement.refresh_from_db()
    assert settlement.is_active is False
    assert client.get(detail_url(settlement)).status_code == 404


# --- Detail -------------------------------------------------------------------------------

def test_detail_is_404_for_outsiders_and_missing(client, settlement, mnx):
    outsider = UserFactory(username="outsider")
    grant(outsider, mnx, "member")  # tickets, but no settlements:read
    client = logged_in(client, outsider)
    for url in (detail_url(settlement), detail_url(settlement, "ticket-search"),
                reverse("settlements:detail", args=[999999])):
        assert client.get(url).status_code == 404
    htmx = client.post(detail_url(settlement, "transition"), {"status": "sent"}, headers=HTMX)
    assert htmx.status_code == 404 and htmx["HX-Retarget"] == "#messages"


def test_detail_shows_facts_notes_tickets_and_totals(client, owner, settlement, linked, priced):
    services.settlement_update(actor=owner, settlement=settlement,
                               changes={"notes": "**Thanks** <script>alert(1)</script>"})
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 10, 5), minutes=90)
    TimeEntryFactory(ticket=linked, user=owner, work_date=date(2026, 11, 5), minutes=600)  # outside the period
    priced()
    html = body(logged_in(client, owner).get(detail_url(settlement)))
    assert '<span class="badge draft" id="settlement-status">Draft</span>' in html
    assert "<strong>Thanks</strong>" in html and "<script>alert" not in html
    section = re.search(r'<section class="card" id="linked-tickets".*?</section>', html, re.S).group(0)
    assert f'data-ticket="{linked.key}"' in section and "Login fails" in section
    assert "1.50" in section and "1,500.00 NOK" in section
    total = re.search(r'<tr id="linked-tickets-total">(.*?)</tr>', section, re.S).group(1)
    assert "1.50" in total and "1,500.00 NOK" in total
    assert 'id="ticket-search"' in html and 'hx-trigger="input changed delay:250ms, search"' in html
    assert '<label for="ticket-search">' in html
    for hook in ('id="attachments"', 'id="share-links"', 'id="events"'):
        assert hook in html


def test_detail_lists_only_readable_tickets_but_says_others_exist(client, owner, settlement, mnx, acme):
    """The unreadable ticket is neither listed nor counted (its hours would tell its size), as
    in the API and MCP; the list page's total leaves it out too."""
    hidden = TicketFactory(project=acme, title="Secret ACME work")
    visible = TicketFactory(project=mnx, title="Visible MNX work")
    for ticket, minutes in ((hidden, 600), (visible, 90)):
        TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2026, 10, 5), minutes=minutes)
        services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    user = UserFactory(username="u")
    grant(user, mnx, "admin")
    html = body(logged_in(client, user).get(detail_url(settlement)))
    assert "Visible MNX work" in html and "Secret ACME work" not in html
    assert "1 linked ticket belongs to a project you cannot read" in html
    total = re.search(r'<tr id="linked-tickets-total">(.*?)</tr>', html, re.S).group(1)
    assert "1.50" in total and "11.50" not in total
    listing = body(client.get(reverse("settlements:list")))
    assert "1.50" in listing and "11.50" not in listing
    # Admin in MNX only: not a writer of this cross-project settlement, so no buttons.
    assert 'id="ticket-search"' not in html and ">Send</button>" not in html and 'id="attachment-upload"' not in html


def test_detail_query_count_does_not_grow_with_tickets_and_attachments(client, owner, mnx, acme, priced):
    client = logged_in(client, owner)

    def settlement_with(count, offset):
        settlement = make_settlement(owner, [mnx, acme], name=f"x{count}", start=date(2020 + offset, 1, 1),
                                     end=date(2020 + offset, 12, 31))
        for n in range(count):
            ticket = TicketFactory(project=mnx if n % 2 else acme)
            TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2020 + offset, 3, 1))
            services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
            services.attachment_upload(actor=owner, settlement=settlement,
                                       uploaded=SimpleUploadedFile(f"f{n}.pdf", PDF))
        settlement = services.settlement_transition(actor=owner, settlement=settlement, status="sent")
        for _ in range(count):
            services.share_link_create(actor=owner, settlement=settlement)
        return settlement

    one, ten = settlement_with(1, 0), settlement_with(10, 1)
    priced()
    assert body(client.get(detail_url(ten))).count("data-ticket=") == 10
    assert _count_queries(client, detail_url(one)) == _count_queries(client, detail_url(ten)) <= MAX_DETAIL_QUERIES


# --- Ticket autocomplete, link, unlink ----------------------------------------------------

def _search(client, settlement, q):
    response = client.get(detail_url(settlement, "ticket-search"), {"q": q}, headers=HTMX)
    assert response.status_code == 200
    return re.findall(r'<li data-ticket="([^"]+)"', body(response))


def test_autocomplete_matches_key_number_and_title(client, owner, settlement, mnx, acme):
    login = TicketFactory(project=mnx, title="Login fails on Safari")
    report = TicketFactory(project=acme, title="Monthly 100% report")
    other = TicketFactory(project=mnx, title="Other")
    client = logged_in(client, owner)
    assert _search(client, settlement, login.key) == [login.key]
    assert _search(client, settlement, login.key.lower()) == [login.key]
    assert _search(client, settlement, str(other.number)) == [other.key]
    assert _search(client, settlement, "safari") == [login.key]
    assert _search(client, settlement, "100%") == [report.key]
    assert _search(client, settlement, "  ") == []
    empty = client.get(detail_url(settlement, "ticket-search"), {"q": "nothing like it"}, headers=HTMX)
    assert "No ticket to link matches" in body(empty)
    html = body(client.get(detail_url(settlement, "ticket-search"), {"q": login.key}, headers=HTMX))
    assert f'hx-post="{detail_url(settlement, "ticket-link")}"' in html and ">Link</button>" in html
    assert 'hx-target="#linked-tickets"' in html and 'hx-include="#ticket-search"' in html


def test_autocomplete_excludes_linked_and_unreadable_tickets(client, owner, settlement, mnx, acme, linked):
    outside = TicketFactory(project=ProjectFactory(key="OUT"), title="Login elsewhere")
    acme_ticket = TicketFactory(project=acme, title="Login in ACME")
    user = custom_role(UserFactory(username="u"), [mnx], ["tickets:read", "settlements:read", "settlements:write"])
    custom_role(user, [acme], ["settlements:read", "settlements:write"], slug="blind")  # no tickets:read in ACME
    client = logged_in(client, user)
    assert _search(client, settlement, "login") == []
    assert linked.key not in _search(client, settlement, linked.key)
    assert outside.key not in _search(client, settlement, "elsewhere")
    assert _search(logged_in(Client(), owner), settlement, "login") == [acme_ticket.key]


def test_link_and_unlink_rerender_the_tickets_section(client, owner, settlement, ticket):
    client = logged_in(client, owner)
    response = client.post(detail_url(settlement, "ticket-link"), {"ticket": ticket.pk, "q": "login"}, headers=HTMX)
    assert response.status_code == 200
    html = body(response)
    assert html.lstrip().startswith('<section class="card" id="linked-tickets"')
    assert f'data-ticket="{ticket.key}"' in html and ">Unlink</button>" in html
    # Out of band: the timeline, the autocomplete's results (without the linked ticket), the messages.
    assert 'id="events" aria-labelledby="events-heading" hx-swap-oob="true"' in html
    assert 'id="ticket-search-results" aria-live="polite" hx-swap-oob="innerHTML"' in html
    assert 'id="messages" hx-swap-oob="innerHTML"' in html and 'No ticket to link matches' in html
    assert list(settlement.settlement_tickets.values_list("ticket_id", flat=True)) == [ticket.pk]

    unlinked = client.post(detail_url(settlement, "ticket-unlink", ticket.pk), headers=HTMX)
    assert unlinked.status_code == 200 and "No tickets linked yet." in body(unlinked)
    assert not settlement.settlement_tickets.exists()
    assert list(settlement.events.values_list("kind", flat=True))[-2:] == ["ticket_linked", "ticket_unlinked"]


def test_link_without_htmx_redirects_back_and_accepts_a_key(client, owner, settlement, ticket):
    response = logged_in(client, owner).post(detail_url(settlement, "ticket-link"), {"ticket": ticket.key})
    assert response.status_code == 302 and response["Location"] == detail_url(settlement) + "#linked-tickets"
    assert settlement.settlement_tickets.filter(ticket=ticket).exists()


def test_overlapping_link_is_a_409_in_the_message_area(client, owner, settlement, linked, mnx, acme):
    overlapping = make_settlement(owner, [mnx, acme], name="Overlap", start=date(2026, 10, 15),
                                  end=date(2026, 11, 15))
    response = logged_in(client, owner).post(detail_url(overlapping, "ticket-link"), {"ticket": linked.pk},
                                             headers=HTMX)
    assert response.status_code == 409 and response["X-Error-Code"] == "overlapping_settlement"
    assert response["HX-Retarget"] == "#messages" and response["HX-Reswap"] == "innerHTML"
    assert f"already in settlement {settlement.display_number}" in body(response)


def test_link_refusals_for_readers_and_sent_settlements(client, owner, reader, settlement, ticket):
    response = logged_in(client, reader).post(detail_url(settlement, "ticket-link"), {"ticket": ticket.pk},
                                              headers=HTMX)
    assert response.status_code == 403
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    sent = logged_in(Client(), owner).post(detail_url(settlement, "ticket-link"), {"ticket": ticket.pk},
                                           headers=HTMX)
    assert sent.status_code == 409 and sent["X-Error-Code"] == "settlement_not_draft"
    unknown = logged_in(Client(), owner).post(detail_url(settlement, "ticket-link"), {"ticket": "NOPE-1"},
                                              headers=HTMX)
    assert unknown.status_code == 404


# --- Attachments --------------------------------------------------------------------------

def test_upload_form_has_labelled_fields_and_progress(client, owner, settlement):
    html = body(logged_in(client, owner).get(detail_url(settlement)))
    form = re.search(r'<form[^>]*id="attachment-upload".*?</form>', html, re.S).group(0)
    assert 'hx-encoding="multipart/form-data"' in form and "data-progress" in form
    assert 'enctype="multipart/form-data"' in form and "csrfmiddlewaretoken" in form
    assert re.search(r"<progress[^>]*hidden", form) and "data-progress-label" in form
    for field in ("upload-file", "upload-category", "upload-state"):
        assert f'<label for="{field}">' in form and f'id="{field}"' in form


def test_upload_pdf_then_change_and_preview(client, owner, settlement):
    client = logged_in(client, owner)
    response = upload(client, settlement, "Report 10.PDF", PDF, category="invoice", state="signed")
    assert response.status_code == 200
    attachment = SettlementAttachment.objects.get()
    assert attachment.original_name == "Report 10.pdf" and attachment.category == "invoice"
    html = body(response)
    assert html.lstrip().startswith('<section class="card" id="attachments"')
    assert 'data-attachment="Report 10.pdf"' in html and ">Preview</button>" in html
    assert 'hx-swap-oob="true"' in html  # the timeline follows

    changed = client.post(detail_url(settlement, "attachment-update", attachment.pk),
                          {"category": "report", "state": "draft"}, headers=HTMX)
    assert changed.status_code == 200
    attachment.refresh_from_db()
    assert (attachment.category, attachment.state) == ("report", "draft")

    preview = body(client.get(detail_url(settlement, "attachment-preview", attachment.pk), headers=HTMX))
    download = detail_url(settlement, "attachment-download", attachment.pk)
    assert f'<iframe class="preview" id="attachment-preview-frame" src="{download}?inline=1"' in preview


def test_preview_and_download_headers(client, owner, settlement):
    pdf = services.attachment_upload(actor=owner, settlement=settlement,
                                     uploaded=SimpleUploadedFile("a.pdf", PDF))
    png = services.attachment_upload(actor=owner, settlement=settlement,
                                     uploaded=SimpleUploadedFile("b.png", PNG))
    text = services.attachment_upload(actor=owner, settlement=settlement,
                                      uploaded=SimpleUploadedFile("c.txt", b"plain"))
    client = logged_in(client, owner)

    def get(attachment, **params):
        return client.get(detail_url(settlement, "attachment-download", attachment.pk), params)

    inline = get(pdf, inline="1")
    assert inline.status_code == 200 and b"".join(inline.streaming_content) == PDF
    assert inline["Content-Disposition"].startswith("inline;") and inline["Content-Type"] == "application/pdf"
    assert inline["X-Content-Type-Options"] == "nosniff" and inline["X-Frame-Options"] == "SAMEORIGIN"
    assert get(pdf)["Content-Disposition"].startswith("attachment;")
    assert get(text, inline="1")["Content-Disposition"].startswith("attachment;")
    image = body(client.get(detail_url(settlement, "attachment-preview", png.pk)))
    assert '<img class="preview" id="attachment-preview-image"' in image
    assert "Preview" not in re.search(r'<tr data-attachment="c.txt".*?</tr>', body(client.get(detail_url(
        settlement))), re.S).group(0)


def test_attachments_of_invisible_settlements_are_404(client, owner, settlement):
    attachment = services.attachment_upload(actor=owner, settlement=settlement,
                                            uploaded=SimpleUploadedFile("a.pdf", PDF))
    outsider = UserFactory(username="outsider")
    response = logged_in(client, outsider).get(detail_url(settlement, "attachment-download", attachment.pk))
    assert response.status_code == 404
    other = make_settlement(owner, [settlement.projects.first()], name="other", start=date(2027, 1, 1),
                            end=date(2027, 1, 31))
    wrong_parent = logged_in(Client(), owner).get(detail_url(other, "attachment-download", attachment.pk))
    assert wrong_parent.status_code == 404


@pytest.mark.parametrize("name,content,code", [("virus.pdf", EXE, "content_mismatch"),
                                               ("tool.exe", EXE, "extension_not_allowed")])
def test_upload_refused_with_the_services_code(client, owner, settlement, name, content, code):
    response = upload(logged_in(client, owner), settlement, name, content)
    assert response.status_code == 400 and response["X-Error-Code"] == code
    html = body(response)
    assert 'class="field-error" id="upload-file_error"' in html
    assert not SettlementAttachment.objects.exists()


def test_upload_without_a_file_is_a_form_error(client, owner, settlement):
    response = logged_in(client, owner).post(detail_url(settlement, "attachment-upload"), {"category": "other",
                                                                                          "state": "draft"},
                                             headers=HTMX)
    assert response.status_code == 400 and 'id="upload-file_error"' in body(response)


def test_upload_too_large_is_413(client, owner, settings, settlement):
    settings.SETTLEMENT_ATTACHMENT_MAX_BYTES = 1024
    client = logged_in(client, owner)
    streamed = upload(client, settlement, "big.pdf", PDF + b"x" * 4096)  # stopped by the upload handler
    assert streamed.status_code == 413 and streamed["X-Error-Code"] == "file_too_large"
    declared = upload(client, settlement, "huge.pdf", PDF + b"x" * 200_000)  # refused from Content-Length
    assert declared.status_code == 413
    assert not SettlementAttachment.objects.exists()


def test_upload_checks_rights_and_csrf(owner, reader, settlement):
    response = upload(logged_in(Client(), reader), settlement, "a.pdf", PDF)
    assert response.status_code == 403 and response["X-Error-Code"] == "missing_permission"
    strict = logged_in(Client(enforce_csrf_checks=True), owner)
    assert upload(strict, settlement, "a.pdf", PDF).status_code == 403
    assert not SettlementAttachment.objects.exists()
    # With the token the page renders, the same client gets in.
    strict.get(detail_url(settlement))
    token = strict.cookies["csrftoken"].value
    ok = strict.post(detail_url(settlement, "attachment-upload"),
                     {"file": SimpleUploadedFile("a.pdf", PDF), "category": "other", "state": "draft"},
                     headers={**HTMX, "X-CSRFToken": token})
    assert ok.status_code == 200 and SettlementAttachment.objects.count() == 1


def test_upload_allowed_after_sending_but_delete_only_in_draft(client, owner, settlement):
    client = logged_in(client, owner)
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    assert upload(client, settlement, "protocol.pdf", PDF, category="acceptance_protocol").status_code == 200
    attachment = SettlementAttachment.objects.get()
    html = body(client.get(detail_url(settlement)))
    assert "Delete protocol.pdf" not in html
    refused = client.post(detail_url(settlement, "attachment-delete", attachment.pk), headers=HTMX)
    assert refused.status_code == 409 and refused["X-Error-Code"] == "settlement_not_draft"
    services.settlement_transition(actor=owner, settlement=settlement, status="draft")
    html = body(client.get(detail_url(settlement)))
    assert re.search(r'hx-confirm="Delete the attachment protocol.pdf\?', html)
    deleted = client.post(detail_url(settlement, "attachment-delete", attachment.pk), headers=HTMX)
    assert deleted.status_code == 200 and "No attachments yet." in body(deleted)
    assert not SettlementAttachment.objects.exists()


# --- Status buttons -----------------------------------------------------------------------

def _buttons(client, settlement) -> list[str]:
    html = body(client.get(detail_url(settlement)))
    return re.findall(r'<form[^>]*class="inline-form status-action".*?<button[^>]*>([^<]+)</button>', html, re.S)


def test_status_buttons_follow_the_workflow(client, owner, settlement):
    client = logged_in(client, owner)
    assert _buttons(client, settlement) == ["Send"]
    response = client.post(detail_url(settlement, "transition"), {"status": "sent"}, headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == detail_url(settlement)
    settlement.refresh_from_db()
    assert settlement.status == "sent"
    assert _buttons(client, settlement) == ["Mark as paid", "Revert to draft"]
    html = body(client.get(detail_url(settlement)))
    revert = re.search(r'hx-confirm="([^"]*)"\s+hx-swap="none"\s+data-transition="draft"', html).group(1)
    assert "unfreeze" in revert
    assert client.post(detail_url(settlement, "transition"), {"status": "paid"}).status_code == 302
    assert _buttons(client, settlement) == ["Back to sent"]


def test_invalid_transition_is_409_in_the_message_area(client, owner, settlement):
    response = logged_in(client, owner).post(detail_url(settlement, "transition"), {"status": "paid"}, headers=HTMX)
    assert response.status_code == 409 and response["X-Error-Code"] == "invalid_transition"
    assert response["HX-Retarget"] == "#messages" and "cannot go from draft to paid" in body(response)
    bad = logged_in(Client(), owner).post(detail_url(settlement, "transition"), {"status": "lost"}, headers=HTMX)
    assert bad.status_code == 400


def test_reverse_transition_needs_project_admin(client, owner, mnx, acme, settlement):
    writer = custom_role(UserFactory(username="writer"), [mnx, acme],
                         ["tickets:read", "settlements:read", "settlements:write"], slug="biller")
    client = logged_in(client, writer)
    assert _buttons(client, settlement) == ["Send"]
    client.post(detail_url(settlement, "transition"), {"status": "sent"}, headers=HTMX)
    assert _buttons(client, settlement) == ["Mark as paid"]  # no "Revert to draft" without admin
    response = client.post(detail_url(settlement, "transition"), {"status": "draft"}, headers=HTMX)
    assert response.status_code == 403 and response["X-Error-Code"] == "project_admin_required"
    assert response["HX-Retarget"] == "#messages"


def test_readers_get_no_status_buttons(client, reader, settlement):
    client = logged_in(client, reader)
    assert _buttons(client, settlement) == []
    response = client.post(detail_url(settlement, "transition"), {"status": "sent"}, headers=HTMX)
    assert response.status_code == 403


# --- Share links and the timeline ---------------------------------------------------------

def test_share_link_create_shows_the_url_once_and_revoke(client, owner, settlement):
    client = logged_in(client, owner)
    assert 'id="share-link-create"' not in body(client.get(detail_url(settlement)))  # drafts cannot be shared
    refused = client.post(detail_url(settlement, "share-link-create"), {}, headers=HTMX)
    assert refused.status_code == 409 and refused["X-Error-Code"] == "settlement_not_sent"

    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    page = body(client.get(detail_url(settlement)))
    assert 'id="share-link-create"' in page and '<label for="share-expires_at">' in page
    expires = (timezone.localtime() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(detail_url(settlement, "share-link-create"), {"expires_at": expires}, headers=HTMX)
    assert response.status_code == 201 and "no-store" in response["Cache-Control"]
    url = re.search(r'id="share-link-url" type="text" readonly value="([^"]+)"', body(response)).group(1)
    token = url.rstrip("/").rsplit("/", 1)[-1]
    assert url == f"http://testserver/s/{token}/"
    link = SettlementShareLink.objects.get()
    assert link.digest != token and link.expires_at is not None
    assert token not in body(client.get(detail_url(settlement)))  # never shown again
    assert Client().get(url).status_code == 200

    revoked = client.post(detail_url(settlement, "share-link-revoke", link.pk), headers=HTMX)
    assert revoked.status_code == 200 and ">revoked</span>" in body(revoked)
    assert Client().get(url).status_code == 404
    kinds = list(settlement.events.values_list("kind", flat=True))
    assert kinds[-2:] == ["shared", "share_revoked"]


def test_share_link_in_the_past_is_a_form_error(client, owner, settlement):
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    past = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = logged_in(client, owner).post(detail_url(settlement, "share-link-create"), {"expires_at": past},
                                             headers=HTMX)
    assert response.status_code == 400 and "The expiry must be in the future." in body(response)


def test_share_link_without_htmx_renders_the_page_with_the_url(client, owner, settlement):
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    response = logged_in(client, owner).post(detail_url(settlement, "share-link-create"), {})
    assert response.status_code == 201 and 'id="share-link-url"' in body(response)
    assert "<!doctype html>" in body(response)


def test_events_timeline_says_who_when_what(client, owner, settlement, ticket):
    services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    services.settlement_update(actor=owner, settlement=settlement, changes={"name": "Renamed"})
    services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    html = body(logged_in(client, owner).get(detail_url(settlement)))
    timeline = re.search(r'<section class="card" id="events".*?</section>', html, re.S).group(0)
    kinds = re.findall(r'data-event="([^"]+)"', timeline)
    assert kinds == ["transitioned", "updated", "ticket_linked", "created"]
    assert "Draft → Sent" in timeline and ticket.key in timeline
    assert '<span class="event-detail">name</span>' in timeline
    assert "owner" in timeline and "<time datetime=" in timeline

