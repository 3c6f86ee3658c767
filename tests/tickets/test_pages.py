"""Dashboard pages of projects, tickets and the board, through Django's test client: rendering,
login, visibility (404) and rights (403), the list filters, create/edit with form and service
errors, time entries and expenses, the frozen ticket's banner and refusals, and the board's
status changes (plain form, htmx and the drag-and-drop request kanban.js sends)."""

from datetime import date

import pytest
from django.test import Client

from settlements import services as settlement_services
from settlements.guards import TICKET_FROZEN_MESSAGE
from tests.factories import ExpenseFactory, ProjectFactory, TicketFactory, TimeEntryFactory, UserFactory, grant
from tickets.choices import TicketPriority, TicketStatus
from tickets.models import Expense, Ticket, TimeEntry

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def mnx():
    return ProjectFactory(key="MNX", name="Monolynx")


@pytest.fixture
def people(mnx):
    """owner, member, viewer of MNX, and an outsider with a project of their own."""
    users = {role: UserFactory(username=role) for role in ("owner", "member", "viewer")}
    for role, user in users.items():
        grant(user, mnx, role)
    outsider = UserFactory(username="outsider")
    grant(outsider, ProjectFactory(key="AWAY"), "owner")
    users["outsider"] = outsider
    return users


@pytest.fixture
def ticket(mnx, people):
    return TicketFactory(project=mnx, title="Login fails", assignee=people["member"], created_by=people["owner"])


def browser(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def page_urls(ticket) -> list[str]:
    key = ticket.key
    return ["/dashboard/", "/dashboard/projects/", "/dashboard/projects/MNX/", "/dashboard/projects/MNX/board/",
            "/dashboard/tickets/", f"/dashboard/tickets/{key}/", "/dashboard/tickets/new/",
            f"/dashboard/tickets/{key}/edit/"]


def test_every_page_renders_for_a_member(people, ticket):
    client = browser(people["member"])
    for url in page_urls(ticket):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"<h1" in response.content


def test_anonymous_visitors_are_sent_to_login(ticket):
    client = browser(None)
    for url in page_urls(ticket):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    response = client.post(f"/dashboard/tickets/{ticket.key}/status/", {"status": "done"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_invisible_projects_and_tickets_are_not_found(people, ticket):
    client = browser(people["outsider"])
    key = ticket.key
    for url in ("/dashboard/projects/MNX/", "/dashboard/projects/MNX/board/", f"/dashboard/tickets/{key}/",
                f"/dashboard/tickets/{key}/edit/", "/dashboard/projects/NOPE/", "/dashboard/tickets/MNX-999/"):
        assert client.get(url).status_code == 404, url
    for url, data in ((f"/dashboard/tickets/{key}/status/", {"status": "done"}),
                      (f"/dashboard/tickets/{key}/edit/", {"title": "x"}),
                      (f"/dashboard/tickets/{key}/time/", {"time-work_date": "2026-10-01", "time-minutes": "5"})):
        assert client.post(url, data).status_code == 404, url
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.BACKLOG
    # Lists only ever show readable objects.
    assert b"MNX" not in client.get("/dashboard/tickets/").content
    assert b"MNX" not in client.get("/dashboard/projects/").content


def test_project_keys_are_case_insensitive(people, ticket):
    client = browser(people["member"])
    assert client.get("/dashboard/projects/mnx/").status_code == 200
    assert client.get(f"/dashboard/tickets/{ticket.key.lower()}/").status_code == 200


# --- Rights ----------------------------------------------------------------------------------

def test_viewer_cannot_create_or_edit(people, ticket):
    client = browser(people["viewer"])
    response = client.get("/dashboard/tickets/new/")
    assert response.status_code == 403 and response["X-Error-Code"] == "missing_permission"
    assert client.post("/dashboard/tickets/new/", {"project": "MNX", "title": "x"}).status_code == 403
    response = client.get(f"/dashboard/tickets/{ticket.key}/edit/")
    assert response.status_code == 403 and b"tickets:write" in response.content
    assert client.post(f"/dashboard/tickets/{ticket.key}/edit/", {"title": "Changed"}).status_code == 403
    assert client.post(f"/dashboard/tickets/{ticket.key}/status/", {"status": "done"}).status_code == 403
    assert client.post(f"/dashboard/tickets/{ticket.key}/time/",
                       {"time-work_date": "2026-10-01", "time-minutes": "30", "time-activity": "development"}
                       ).status_code == 403
    assert Ticket.objects.get(pk=ticket.pk).title == "Login fails" and not TimeEntry.objects.exists()


def test_viewer_sees_no_write_controls(people, ticket):
    html = browser(people["viewer"]).get(f"/dashboard/tickets/{ticket.key}/").content.decode()
    assert 'data-form="add-time"' not in html and 'data-link="edit"' not in html
    assert 'data-form="status"' not in html
    board = browser(people["viewer"]).get("/dashboard/projects/MNX/board/").content.decode()
    assert 'draggable="true"' not in board and "data-status-select" not in board


def test_member_cannot_delete_someone_elses_time_entry(people, ticket):
    entry = TimeEntryFactory(ticket=ticket, user=people["owner"])
    client = browser(people["member"])
    assert f'data-time-entry="{entry.pk}"' in client.get(f"/dashboard/tickets/{ticket.key}/").content.decode()
    response = client.post(f"/dashboard/tickets/{ticket.key}/time/{entry.pk}/delete/")
    assert response.status_code == 403 and response["X-Error-Code"] == "not_own_record"
    assert TimeEntry.objects.filter(pk=entry.pk).exists()


# --- Ticket list -----------------------------------------------------------------------------

@pytest.fixture
def listed(mnx, people):
    other = ProjectFactory(key="ACME")
    grant(people["member"], other, "member")
    TicketFactory(project=mnx, title="Printer jam", priority=TicketPriority.HIGH, status=TicketStatus.TODO,
                  assignee=people["member"])
    TicketFactory(project=mnx, title="Slow search", priority=TicketPriority.LOW, assignee=people["owner"])
    TicketFactory(project=other, title="Invoice layout", status=TicketStatus.DONE)
    TicketFactory(project=ProjectFactory(key="SECRET"), title="Hidden one")
    return people["member"]


def listed_keys(client, **params) -> list[str]:
    response = client.get("/dashboard/tickets/", params)
    assert response.status_code == 200
    return [ticket.key for ticket in response.context["page_obj"].object_list]


def test_ticket_list_filters(listed):
    client = browser(listed)
    assert listed_keys(client) == ["ACME-1", "MNX-1", "MNX-2"]
    assert listed_keys(client, project="ACME") == ["ACME-1"]
    assert listed_keys(client, status="todo") == ["MNX-1"]
    assert listed_keys(client, priority="low") == ["MNX-2"]
    assert listed_keys(client, assignee="me") == ["MNX-1"]
    assert listed_keys(client, assignee="owner") == ["MNX-2"]
    assert listed_keys(client, assignee="none") == ["ACME-1"]
    assert listed_keys(client, q="printer") == ["MNX-1"]
    assert listed_keys(client, q="MNX-2") == ["MNX-2"]
    assert listed_keys(client, project="MNX", priority="high", status="todo") == ["MNX-1"]


def test_ticket_list_shows_columns_and_labelled_filters(listed):
    html = browser(listed).get("/dashboard/tickets/", {"project": "MNX"}).content.decode()
    assert 'data-ticket="MNX-1"' in html and "Printer jam" in html and "High" in html and "To do" in html
    for name in ("q", "project", "status", "priority", "assignee"):
        assert f'<label for="id_{name}">' in html
    assert "SECRET" not in html


def test_ticket_list_paginates(mnx, people):
    for _ in range(30):
        TicketFactory(project=mnx)
    client = browser(people["member"])
    first = client.get("/dashboard/tickets/")
    assert len(first.context["page_obj"].object_list) == 25 and 'rel="next"' in first.content.decode()
    assert len(client.get("/dashboard/tickets/", {"page": 2}).context["page_obj"].object_list) == 5


def test_ticket_list_reports_a_value_it_does_not_understand(listed):
    response = browser(listed).get("/dashboard/tickets/", {"status": "nonsense"})
    assert response.status_code == 200 and 'class="field-error"' in response.content.decode()


# --- My work ---------------------------------------------------------------------------------

def test_my_work_lists_my_open_tickets_and_recent_time(mnx, people, ticket):
    member = people["member"]
    TicketFactory(project=mnx, title="Finished", assignee=member, status=TicketStatus.DONE)
    TicketFactory(project=ProjectFactory(key="GONE"), title="Not my project", assignee=member)
    TimeEntryFactory(ticket=ticket, user=member, minutes=90, description="Debugging")
    html = browser(member).get("/dashboard/").content.decode()
    assert 'data-ticket="MNX-1"' in html and "Finished" not in html and "Not my project" not in html
    assert "Debugging" in html and "1.50" in html


# --- Create and edit -------------------------------------------------------------------------

def test_create_ticket(mnx, people):
    client = browser(people["member"])
    form = client.get("/dashboard/tickets/new/", {"project": "MNX"})
    assert form.context["form"]["project"].value() == "MNX"
    # Only projects where the user may write are offered.
    assert [p.key for p in form.context["form"].fields["project"].queryset] == ["MNX"]
    response = client.post("/dashboard/tickets/new/", {
        "project": "MNX", "title": "New bug", "description": "Steps", "priority": "high", "status": "todo",
        "assignee": people["viewer"].pk, "due_date": "2026-11-30"})
    ticket = Ticket.objects.get(title="New bug")
    assert response.status_code == 302 and response["Location"] == f"/dashboard/tickets/{ticket.key}/"
    assert (ticket.priority, ticket.status, ticket.assignee, ticket.due_date, ticket.created_by) == (
        "high", "todo", people["viewer"], date(2026, 11, 30), people["member"])


def test_create_offers_only_project_members_as_assignees(mnx, people):
    form = browser(people["member"]).get("/dashboard/tickets/new/", {"project": "MNX"}).context["form"]
    assert {user.username for user in form.fields["assignee"].queryset} == {"owner", "member", "viewer"}
    response = browser(people["member"]).post("/dashboard/tickets/new/", {
        "project": "MNX", "title": "x", "priority": "low", "status": "backlog", "assignee": people["outsider"].pk})
    assert response.status_code == 400 and "assignee" in response.context["form"].errors
    assert not Ticket.objects.filter(title="x").exists()


def test_create_with_invalid_input_answers_400_with_the_errors(people):
    response = browser(people["member"]).post("/dashboard/tickets/new/", {"project": "MNX", "title": ""})
    assert response.status_code == 400 and response["X-Error-Code"] == "invalid"
    assert "This field is required." in response.content.decode()


def test_create_in_an_archived_project_is_refused(mnx, people):
    client = browser(people["member"])
    mnx.is_active = False
    mnx.save()
    assert client.get("/dashboard/tickets/new/").status_code == 403


def test_edit_ticket(people, ticket):
    client = browser(people["member"])
    form = client.get(f"/dashboard/tickets/{ticket.key}/edit/").context["form"]
    assert form["title"].value() == "Login fails" and form["assignee"].value() == people["member"].pk
    response = client.post(f"/dashboard/tickets/{ticket.key}/edit/", {
        "title": "Login fails on Safari", "description": "", "priority": "critical", "status": "review",
        "assignee": "", "due_date": ""})
    assert response.status_code == 302 and response["Location"] == f"/dashboard/tickets/{ticket.key}/"
    ticket.refresh_from_db()
    assert (ticket.title, ticket.priority, ticket.status, ticket.assignee) == (
        "Login fails on Safari", "critical", "review", None)
    assert "Login fails on Safari" in client.get(response["Location"]).content.decode()


def test_edit_with_invalid_input_answers_400(people, ticket):
    response = browser(people["member"]).post(f"/dashboard/tickets/{ticket.key}/edit/", {
        "title": "x" * 300, "priority": "urgent", "status": "review"})
    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"title", "priority"}


# --- Time entries and expenses ---------------------------------------------------------------

TIME = {"time-work_date": "2026-10-01", "time-minutes": "90", "time-activity": "support",
        "time-description": "Call with customer", "time-billable": "on"}
EXPENSE = {"expense-date": "2026-10-02", "expense-description": "Taxi", "expense-amount": "250.00",
           "expense-currency": "NOK", "expense-billable": "on"}


def test_log_time_and_add_expense(people, ticket):
    client = browser(people["member"])
    html = client.get(f"/dashboard/tickets/{ticket.key}/").content.decode()
    assert 'id="add-time-form"' in html and '<label for="id_time-minutes">' in html
    assert '<label for="id_expense-amount">' in html
    response = client.post(f"/dashboard/tickets/{ticket.key}/time/", TIME)
    assert response.status_code == 302 and response["Location"] == f"/dashboard/tickets/{ticket.key}/"
    entry = TimeEntry.objects.get()
    assert (entry.user, entry.minutes, entry.activity, entry.billable) == (people["member"], 90, "support", True)
    assert client.post(f"/dashboard/tickets/{ticket.key}/expenses/", EXPENSE).status_code == 302
    expense = Expense.objects.get()
    assert (expense.amount, expense.currency, expense.user) == (250, "NOK", people["member"])
    html = client.get(f"/dashboard/tickets/{ticket.key}/").content.decode()
    assert "Call with customer" in html and "Taxi" in html and "250.00 NOK" in html
    assert "Time logged on MNX-1." in html


def test_service_refusal_of_time_becomes_a_form_error(people, ticket):
    response = browser(people["member"]).post(f"/dashboard/tickets/{ticket.key}/time/",
                                              {**TIME, "time-minutes": "2000"})
    assert response.status_code == 400 and response["X-Error-Code"] == "invalid"
    assert "less than or equal to 1440" in response.content.decode()
    assert not TimeEntry.objects.exists()


def test_htmx_time_entry_answers_with_the_section_and_message(people, ticket):
    client = browser(people["member"])
    response = client.post(f"/dashboard/tickets/{ticket.key}/time/", TIME, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section class="card" id="time-entries"')
    assert 'hx-swap-oob="true"' in html and "Time logged on MNX-1." in html and "1.50" in html
    invalid = client.post(f"/dashboard/tickets/{ticket.key}/time/", {**TIME, "time-minutes": "0"}, **HTMX)
    assert invalid.status_code == 400 and 'id="time-entries"' in invalid.content.decode()
    entry = TimeEntry.objects.get()
    deleted = client.post(f"/dashboard/tickets/{ticket.key}/time/{entry.pk}/delete/", **HTMX)
    assert deleted.status_code == 200 and "Time entry deleted" in deleted.content.decode()
    assert not TimeEntry.objects.exists()


def test_delete_expense(people, ticket):
    expense = ExpenseFactory(ticket=ticket, user=people["member"])
    client = browser(people["member"])
    response = client.post(f"/dashboard/tickets/{ticket.key}/expenses/{expense.pk}/delete/")
    assert response.status_code == 302 and not Expense.objects.exists()
    # A record of another ticket is not found under this one.
    other = ExpenseFactory(ticket=TicketFactory(project=ticket.project), user=people["member"])
    assert client.post(f"/dashboard/tickets/{ticket.key}/expenses/{other.pk}/delete/").status_code == 404


# --- Frozen tickets --------------------------------------------------------------------------

@pytest.fixture
def frozen(people, ticket, mnx):
    """`ticket` linked to a sent settlement (the owner may read settlements; the member may not)."""
    owner = people["owner"]
    settlement = settlement_services.settlement_create(actor=owner, name="October", period_start=date(2026, 10, 1),
                                                       period_end=date(2026, 10, 31), projects=[mnx])
    settlement_services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    settlement_services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    return settlement


def test_frozen_ticket_shows_the_lock_banner_naming_the_settlement(people, ticket, frozen):
    html = browser(people["owner"]).get(f"/dashboard/tickets/{ticket.key}/").content.decode()
    number = frozen.display_number
    assert 'class="lock-banner" role="status"' in html
    assert f'<a href="/dashboard/settlements/{frozen.pk}/">{number}</a>' in html
    assert 'data-section="settlements"' in html and f'data-settlement="{number}"' in html
    # Frozen: no edit link, no add forms; the status can still change.
    assert 'data-link="edit"' not in html and 'id="add-time-form"' not in html and 'data-form="status"' in html


def test_frozen_ticket_hides_settlement_data_from_a_member(people, ticket, frozen):
    html = browser(people["member"]).get(f"/dashboard/tickets/{ticket.key}/").content.decode()
    assert frozen.display_number not in html and "October" not in html
    assert 'data-section="settlements"' not in html and "lock-banner" not in html
    assert ">Settlements</h2>" not in html and 'data-nav="settlements"' not in html  # no heading, no menu entry
    # The member still learns that the ticket cannot be edited, without a word about settlements.
    assert "This ticket is locked: only its status can change." in html
    assert "settlement" not in html.lower().replace("settlements & billing", "")  # the product's name aside
    assert 'id="add-time-form"' not in html


def test_settlement_section_lists_a_draft_for_readers_only(people, ticket, mnx):
    owner = people["owner"]
    draft = settlement_services.settlement_create(actor=owner, name="Draft one", period_start=date(2026, 10, 1),
                                                  period_end=date(2026, 10, 31), projects=[mnx])
    settlement_services.settlement_link_ticket(actor=owner, settlement=draft, ticket=ticket)
    owner_html = browser(owner).get(f"/dashboard/tickets/{ticket.key}/").content.decode()
    assert "Draft one" in owner_html and "lock-banner" not in owner_html and 'id="add-time-form"' in owner_html
    member_html = browser(people["member"]).get(f"/dashboard/tickets/{ticket.key}/").content.decode()
    assert "Draft one" not in member_html and 'data-section="settlements"' not in member_html


def test_frozen_ticket_edit_is_refused_with_the_guards_message(people, ticket, frozen):
    client = browser(people["owner"])
    message = TICKET_FROZEN_MESSAGE.format(ticket=ticket.key, settlement=frozen.display_number, status="sent")
    response = client.get(f"/dashboard/tickets/{ticket.key}/edit/")
    assert response.status_code == 403 and response["X-Error-Code"] == "ticket_frozen"
    assert message in response.content.decode()
    response = client.post(f"/dashboard/tickets/{ticket.key}/edit/", {
        "title": "Changed", "priority": "medium", "status": "backlog"})
    assert response.status_code == 403 and message in response.content.decode()
    member = browser(people["member"]).get(f"/dashboard/tickets/{ticket.key}/edit/")
    assert member.status_code == 403 and frozen.display_number not in member.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).title == "Login fails"


def test_frozen_ticket_refuses_time_but_moves_status(people, ticket, frozen):
    client = browser(people["member"])
    response = client.post(f"/dashboard/tickets/{ticket.key}/time/", TIME)
    assert response.status_code == 403 and response["X-Error-Code"] == "ticket_frozen"
    response = client.post(f"/dashboard/tickets/{ticket.key}/status/", {"status": "done"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/projects/MNX/board/"
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.DONE


# --- Board -----------------------------------------------------------------------------------

def test_board_has_five_columns_and_cards(mnx, people, ticket):
    TicketFactory(project=mnx, title="Urgent", priority=TicketPriority.CRITICAL, status=TicketStatus.REVIEW)
    response = browser(people["member"]).get("/dashboard/projects/MNX/board/")
    html = response.content.decode()
    assert [column.status for column in response.context["columns"]] == TicketStatus.values
    for status in TicketStatus.values:
        assert f'data-status="{status}"' in html
    assert 'data-ticket="MNX-1"' in html and 'data-ticket="MNX-2"' in html and 'draggable="true"' in html
    assert '<label for="status-MNX-1" class="visually-hidden">Status of MNX-1</label>' in html
    assert 'data-status-url="/dashboard/tickets/MNX-1/status/"' in html and "js/kanban.js" in html
    review = response.context["columns"][3]
    assert [t.key for t in review.tickets] == ["MNX-2"]


def test_status_form_without_htmx_redirects_to_the_board(people, ticket):
    client = browser(people["member"])
    response = client.post(f"/dashboard/tickets/{ticket.key}/status/", {"status": "in_progress"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/projects/MNX/board/"
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.IN_PROGRESS
    assert "MNX-1 moved to In progress." in client.get(response["Location"]).content.decode()
    # From the ticket page, back to the ticket page; never to another site.
    back = client.post(f"/dashboard/tickets/{ticket.key}/status/",
                       {"status": "review", "next": f"/dashboard/tickets/{ticket.key}/"})
    assert back["Location"] == f"/dashboard/tickets/{ticket.key}/"
    away = client.post(f"/dashboard/tickets/{ticket.key}/status/", {"status": "todo", "next": "https://evil.example/"})
    assert away["Location"] == "/dashboard/projects/MNX/board/"


def test_status_change_with_htmx_answers_with_the_board(people, ticket):
    # kanban.js sends the same request (HX-Request plus the CSRF header) on drag-and-drop.
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["member"])
    token = client.get("/dashboard/projects/MNX/board/").context["csrf_token"]
    response = client.post(f"/dashboard/tickets/{ticket.key}/status/", {"status": "review"},
                           HTTP_X_CSRFTOKEN=str(token), **HTMX)
    assert response.status_code == 200 and response.content.decode().lstrip().startswith('<div id="board"')
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.REVIEW
    assert client.post(f"/dashboard/tickets/{ticket.key}/status/", {"status": "done"}, **HTMX).status_code == 403


def test_refused_move_answers_with_a_message_fragment(people, ticket):
    response = browser(people["viewer"]).post(f"/dashboard/tickets/{ticket.key}/status/", {"status": "done"}, **HTMX)
    assert response.status_code == 403 and response["X-Error-Code"] == "missing_permission"
    assert response["HX-Retarget"] == "#messages"
    assert response.content.decode().startswith('<div class="alert alert-error" role="alert"')
    unknown = browser(people["member"]).post(f"/dashboard/tickets/{ticket.key}/status/", {"status": "x"}, **HTMX)
    assert unknown.status_code == 400 and unknown["X-Error-Code"] == "invalid"
    assert Ticket.objects.get(pk=ticket.pk).status == TicketStatus.BACKLOG

