"""The billing API's lists run as many queries with many rows as with few (no N+1), with the
filters people use (items by client, month, status, project, ticket and source; invoices and runs
by status, kind and month; contracts, sales lines, clients, logs, reconciliation runs and their
unmatched sources), for billing staff whose billing.view comes through a group — not a
superuser, so the permission check reads the user's and the group's permissions on every
request. (tests/billing/test_api.py and test_api_invoicing.py count page sizes 1 and 20 for
directly granted permissions.) Each request is made as a fresh user object, as in production."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import invoicing, services
from billing.models import BillingItem, ReconciliationRun, SalesLine
from billing.reconciliation import Scope, reconcile_now
from tests.billing.conftest import grant_billing
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ExpenseFactory,
    ProjectFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
)
from tests.helpers import assert_flat, count_queries

pytestmark = pytest.mark.django_db

BASE = "/api/billing/"
OCTOBER = date(2026, 10, 1)

# The user's and the group's permissions, the count and the page (related rows joined in); then
# a contract's projects and rates (two prefetches), the page's totals of runs and draft invoices
# (one query), or for unmatched sources the run first.
MAX_QUERIES = {"clients/": 4, "contracts/": 6, "sales-lines/": 4, "items/": 4, "reconciliation-runs/": 4,
               "logs/": 4, "runs/": 5, "invoices/": 5, "unmatched": 5}


class BillingWorld:
    """A viewer (billing.view through a group) and a clerk (billing.admin); a main client MAIN
    whose items stay pending; `grow(n)` adds n clients (NOK and EUR) with a contract, a project,
    time, an expense and a sales line each, one more entry and sales line for MAIN, an entry on a
    project without a contract (unmatched), reconciles as the clerk, voids one new item (both logged
    with the clerk's name), and builds a run per new client: the first
    of every three stays a draft, the second is posted, the third posted and credited."""

    def __init__(self):
        group = Group.objects.create(name="Billing viewers")
        group.permissions.add(Permission.objects.get(content_type__app_label="billing", codename="view"))
        self.viewer = UserFactory(username="viewer")
        self.viewer.groups.add(group)
        self.clerk = grant_billing(UserFactory(username="clerk"), "billing.admin")
        self.main_project = ProjectFactory(key="MAIN")
        self.main = ClientFactory(name="Main AS")
        ContractFactory(client=self.main, projects=[self.main_project], hourly_rate="900.00")
        self.main_ticket = TicketFactory(project=self.main_project)
        self.orphans = TicketFactory(project=ProjectFactory(key="ORPH"))
        self.added = 0

    def grow(self, n: int) -> None:
        new_clients = []
        for _ in range(n):
            self.added += 1
            day = OCTOBER + timedelta(days=self.added % 28)
            client = ClientFactory(name=f"Client {self.added:02d}", currency="EUR" if self.added % 2 else "NOK")
            project = ProjectFactory()
            ContractFactory(client=client, projects=[project], rates={"design": "1200"})
            ticket = TicketFactory(project=project)
            TimeEntryFactory(ticket=ticket, work_date=day)
            ExpenseFactory(ticket=ticket, date=day, currency=client.currency)
            TimeEntryFactory(ticket=self.main_ticket, work_date=day)
            TimeEntryFactory(ticket=self.orphans, work_date=day)
            for owner, on in ((client, project), (self.main, self.main_project)):
                SalesLine.objects.create(client=owner, project=on, date=day, description="Line", qty=Decimal("1"),
                                         unit_price=Decimal("10"), created_by=self.clerk)
            new_clients.append((self.added, client))
        # Run by the clerk, so the runs and their log rows name someone (a related row per row).
        reconcile_now(Scope(), trigger="manual", actor=self.clerk)
        services.item_void(actor=self.clerk, item=BillingItem.objects.filter(client=new_clients[0][1]).first(),
                           reason="Counted")
        for number, client in new_clients:
            run = invoicing.run_build(actor=self.clerk, period=OCTOBER, client_ids=[client.pk]).run
            if number % 3 != 1:
                [invoice] = invoicing.run_post(actor=self.clerk, run=run)
                if number % 3 == 0:
                    invoicing.invoice_credit(actor=self.clerk, invoice=invoice)

    def rows(self, client_for, url: str, params: dict) -> tuple[int, int]:
        api = client_for(get_user_model().objects.get(pk=self.viewer.pk))
        queries, response = count_queries(lambda: api.get(url, params))
        assert response.status_code == 200, response.content
        return queries, response.json()["count"]


@pytest.fixture
def world():
    return BillingWorld()


def assert_list_is_flat(world, client_for, path: str, params: dict, *, url=None) -> None:
    counts = []

    def measure() -> int:
        queries, count = world.rows(client_for, url() if url else BASE + path, params)
        counts.append(count)
        return queries

    world.grow(3)  # a draft, a posted invoice, a credited one
    assert_flat(measure, lambda: world.grow(12), ceiling=MAX_QUERIES[path])
    assert 0 < counts[0] < counts[1], counts


ITEM_FILTERS = {
    "default": {},
    "client": "main",
    "period": {"period": "2026-10"},
    "status": {"status": ["pending", "invoiced"]},
    "project": {"project": "MAIN"},
    "ticket": {"ticket": "MAIN-1"},
    "source": {"source_type": "ticket_time"},
    "sorted-page": {"page_size": 10},
}


@pytest.mark.parametrize("name", ITEM_FILTERS)
def test_item_list(world, client_for, name):
    params = {"client": world.main.pk} if ITEM_FILTERS[name] == "main" else ITEM_FILTERS[name]
    assert_list_is_flat(world, client_for, "items/", params)


@pytest.mark.parametrize("params", [{}, {"status": "posted", "kind": "invoice"}, {"period": "2026-10"},
                                    {"kind": "credit_note"}], ids=["default", "posted", "period", "credit-notes"])
def test_invoice_list(world, client_for, params):
    assert_list_is_flat(world, client_for, "invoices/", params)


@pytest.mark.parametrize("params", [{}, {"period": "2026-10"}, {"created_by": "clerk"}],
                         ids=["default", "period", "built-by"])
def test_run_list(world, client_for, params):
    assert_list_is_flat(world, client_for, "runs/", params)


@pytest.mark.parametrize(("path", "params"), [
    ("clients/", {}),
    ("clients/", {"q": "Client", "is_active": "true"}),
    ("contracts/", {}),
    ("contracts/", {"active_on": "2026-10-15"}),
    ("sales-lines/", {}),
    ("sales-lines/", {"client": "main", "date_from": "2026-10-01", "date_to": "2026-10-31"}),
    ("reconciliation-runs/", {}),
    ("reconciliation-runs/", {"trigger": "manual"}),
    ("logs/", {}),
], ids=["clients", "clients-filtered", "contracts", "contracts-in-force", "sales-lines", "sales-lines-of-main",
        "reconciliation-runs", "manual-runs", "logs"])
def test_other_lists(world, client_for, path, params):
    if params.get("client") == "main":
        params = {**params, "client": world.main.pk}
    assert_list_is_flat(world, client_for, path, params)


def test_unmatched_sources_of_the_latest_run(world, client_for):
    def latest():
        return f"{BASE}reconciliation-runs/{ReconciliationRun.objects.latest('id').pk}/unmatched/"

    assert_list_is_flat(world, client_for, "unmatched", {}, url=latest)


def test_choice_filters_do_not_make_the_query_distinct(world, client_for):
    """A DISTINCT over every column of 94,000 items cost 150 ms per page (EXPLAIN ANALYZE), 6 ms without."""
    world.grow(2)
    api = client_for(world.viewer)
    for path, params in (("items/", {"status": ["pending", "invoiced"], "source_type": "ticket_time"}),
                         ("invoices/", {"status": "posted", "kind": "invoice"}), ("runs/", {"status": "open"}),
                         ("logs/", {"action": "reconcile"}), ("reconciliation-runs/", {"trigger": "manual"})):
        with CaptureQueriesContext(connection) as captured:
            assert api.get(BASE + path, params).status_code == 200
        assert not [q["sql"] for q in captured.captured_queries if "DISTINCT" in q["sql"].upper()], path
