"""The dashboard's lists run a fixed number of queries however many rows they show (no N+1):
each page is counted with 2 rows and again with 20, and the counts must be equal."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.reconciliation import Scope, reconcile_now
from settlements import services as settlement_services
from tests.factories import (
    ContractFactory,
    ExpenseFactory,
    ProjectFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
    grant,
)

pytestmark = pytest.mark.django_db

# Ceilings a little above today's counts, to notice a page growing expensive even while constant.
# Today: projects 7 (session, user, count, page, hours, money), tickets 9, board 6, ticket 9, project 10,
# my work 8, the new-ticket form 7.
MAX_QUERIES = {"projects": 8, "tickets": 10, "board": 7, "detail": 10, "project": 11, "home": 9, "create": 8}


@pytest.fixture
def owner():
    return UserFactory(username="owner")


@pytest.fixture
def mnx(owner):
    project = ProjectFactory(key="MNX", budget_hours=Decimal("100"), budget_amount=Decimal("50000"),
                             budget_currency="NOK")
    grant(owner, project, "owner")
    ContractFactory(projects=[project])
    return project


def count_queries(client: Client, url: str) -> int:
    client.get(url)  # warm up: session, content types, permission caches
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def assert_constant(client: Client, url: str, grow, page: str) -> None:
    grow(2)
    few = count_queries(client, url)
    grow(18)
    many = count_queries(client, url)
    assert few == many <= MAX_QUERIES[page], (few, many)


@pytest.fixture
def client(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_projects_list(client, owner):
    def grow(n):
        for _ in range(n):
            project = ProjectFactory(budget_hours=Decimal("10"), budget_amount=Decimal("1000"), budget_currency="NOK")
            grant(owner, project, "owner")
            ContractFactory(projects=[project])
            TimeEntryFactory(ticket=TicketFactory(project=project), user=owner, work_date=date(2026, 10, 1))
        reconcile_now(Scope(), trigger="manual")

    assert_constant(client, "/dashboard/projects/", grow, "projects")


def _frozen_tickets(owner, mnx, n):
    # Each ticket sits in its own sent settlement, so the payload extension has rows to fetch.
    tickets = [TicketFactory(project=mnx, assignee=owner) for _ in range(n)]
    for ticket in tickets:
        TimeEntryFactory(ticket=ticket, user=owner)
        settlement = settlement_services.settlement_create(
            actor=owner, name=f"S{ticket.number}", period_start=date(2026, 1, 1), period_end=date(2026, 12, 31),
            projects=[mnx])
        settlement_services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
        settlement_services.settlement_transition(actor=owner, settlement=settlement, status="sent")
    return tickets


def test_tickets_list(client, owner, mnx):
    assert_constant(client, "/dashboard/tickets/", lambda n: _frozen_tickets(owner, mnx, n), "tickets")


def test_tickets_list_filtered(client, owner, mnx):
    assert_constant(client, "/dashboard/tickets/?project=MNX&status=backlog&assignee=me&q=Ticket",
                    lambda n: _frozen_tickets(owner, mnx, n), "tickets")


def test_board(client, owner, mnx):
    assert_constant(client, "/dashboard/projects/MNX/board/", lambda n: _frozen_tickets(owner, mnx, n), "board")


def test_ticket_detail(client, owner, mnx):
    ticket = TicketFactory(project=mnx)

    def grow(n):
        for _ in range(n):
            TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2026, 10, 1))
            ExpenseFactory(ticket=ticket, user=owner)
            # Settlements with periods of their own (a ticket may not sit in overlapping ones).
            year = 2000 + ticket.time_entries.count()
            settlement = settlement_services.settlement_create(
                actor=owner, name=f"Year {year}", period_start=date(year, 1, 1), period_end=date(year, 12, 31),
                projects=[mnx])
            settlement_services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)

    assert_constant(client, f"/dashboard/tickets/{ticket.key}/", grow, "detail")


def test_project_detail_and_my_work(client, owner, mnx):
    def grow(n):
        _frozen_tickets(owner, mnx, n)
        reconcile_now(Scope(), trigger="manual")

    assert_constant(client, "/dashboard/projects/MNX/", grow, "project")
    assert count_queries(client, "/dashboard/") <= MAX_QUERIES["home"]


def test_my_work(client, owner, mnx):
    """My open tickets, my recent time and the projects near or over budget, with 2 rows and 20."""
    def grow(n):
        for _ in range(n):
            project = ProjectFactory(budget_hours=Decimal("1"), budget_amount=Decimal("100"), budget_currency="NOK")
            grant(owner, project, "member")
            ContractFactory(projects=[project])
            ticket = TicketFactory(project=project, assignee=owner)
            TimeEntryFactory(ticket=ticket, user=owner, work_date=date(2026, 10, 1))
        reconcile_now(Scope(), trigger="manual")

    assert_constant(client, "/dashboard/", grow, "home")
    page = client.get("/dashboard/")
    assert len(page.context["open_tickets"]) == len(page.context["budgets"]) == 20
    assert len(page.context["time_entries"]) == 10  # the latest ten


def test_ticket_create_form(client, owner, mnx):
    """The project choices and the assignee choices (members of any project offered)."""
    def grow(n):
        for _ in range(n):
            project = ProjectFactory()
            grant(owner, project, "member")
            grant(UserFactory(), project, "viewer")
            grant(UserFactory(), ProjectFactory(), "owner")  # not offered

    assert_constant(client, "/dashboard/tickets/new/", grow, "create")
    form = client.get("/dashboard/tickets/new/").context["form"]
    assert len(form.fields["project"].choices) >= 21 and len(form.fields["assignee"].queryset) == 21
