"""The MCP list and search tools run as many queries with many rows as with few (no N+1): ticket
search, settlements and what one settlement holds (tickets, attachments, the whole settlement),
billing items and invoices (and one invoice's lines). Called through the SDK's client on the
in-process transport (the tool runs inline, on the test's connection, where it is counted), as a
fresh user object each time — the people and data of the REST API's query-count tests."""

import anyio
import pytest
from django.contrib.auth import get_user_model
from mcp.client import Client

from billing.models import Invoice
from config.mcp import build_server
from tests.billing.test_query_counts import BillingWorld
from tests.helpers import assert_flat, count_queries
from tests.settlements.test_api_query_counts import SettlementWorld
from tests.tickets.test_api_query_counts import World as TicketWorld

pytestmark = pytest.mark.django_db

# As the REST lists, without authentication: tickets count, page and the settlement links'
# prefetch; settlements count, page, projects, totals (two). Inside one settlement: the settlement,
# then its rows (tickets with their totals: three); the whole settlement finds it with its counts
# and projects (two), totals (two), tickets, attachments. Billing: the permission check (user and
# group permissions), count and page, and the drafts' totals; one invoice: found, its lines and
# credit notes, and for a draft the stale check, which recalculates its client's sources.
MAX_QUERIES = {"search_tickets": 3, "list_settlements": 5, "list_settlement_tickets": 4,
               "list_settlement_attachments": 2, "get_settlement": 6, "list_billing_items": 4,
               "list_invoices": 5, "get_invoice": 5, "get_invoice (draft)": 14}


@pytest.fixture(autouse=True)
def inline_orm(monkeypatch):
    # Inline tools use the ORM on the thread that runs the client's event loop: the test's own.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def call(actor, tool: str, arguments: dict) -> dict:
    server = build_server(lambda ctx: actor, inline=True)

    async def run():
        async with Client(server) as client:
            return await client.call_tool(tool, arguments)

    result = anyio.run(run)
    assert not result.is_error, result.structured_content
    return result.structured_content


def assert_tool_is_flat(user, tool: str, arguments, grow, size_of, *, ceiling: str = "") -> None:
    sizes = []

    def measure() -> int:
        actor = get_user_model().objects.get(pk=user.pk)  # fresh: no permission cached
        given = arguments() if callable(arguments) else arguments
        queries, payload = count_queries(lambda: call(actor, tool, given))
        sizes.append(size_of(payload))
        return queries

    grow(3)
    assert_flat(measure, lambda: grow(12), ceiling=MAX_QUERIES[ceiling or tool])
    assert sizes[0] and sizes[0] < sizes[1], sizes


def results(payload) -> int:
    return len(payload["results"])


@pytest.mark.parametrize("role", ["member", "admin"])
@pytest.mark.parametrize("arguments", [{}, {"project": ["AAA", "BBB"], "status": ["backlog"]},
                                       {"assignee": "colleague", "query": "Ticket"}],
                         ids=["default", "project-status", "assignee-text"])
def test_search_tickets(role, arguments):
    world = TicketWorld(role)
    assert_tool_is_flat(world.reader, "search_tickets", arguments, world.grow, results)


@pytest.mark.parametrize("arguments", [{}, {"status": ["draft", "sent"], "project": ["AAA"]}],
                         ids=["default", "filtered"])
def test_list_settlements(arguments):
    from tests.settlements.test_pages_query_counts import grow_settlements

    world = SettlementWorld()
    assert_tool_is_flat(world.reader, "list_settlements", arguments, grow_settlements(world), results)


@pytest.mark.parametrize(("tool", "size_of"), [
    ("list_settlement_tickets", lambda payload: len(payload["tickets"])),
    ("list_settlement_attachments", lambda payload: len(payload["attachments"])),
    ("get_settlement", lambda payload: (len(payload["tickets"]), len(payload["attachments"]))),
])
def test_one_settlement(tool, size_of):
    world = SettlementWorld()
    assert_tool_is_flat(world.reader, tool, {"settlement": world.settlement.display_number}, world.grow, size_of)


@pytest.mark.parametrize("arguments", [{}, {"status": ["pending"], "period": "2026-10"}, {"project": ["MAIN"]}],
                         ids=["default", "pending-in-october", "project"])
def test_list_billing_items(arguments):
    world = BillingWorld()
    assert_tool_is_flat(world.viewer, "list_billing_items", arguments, world.grow, lambda p: p["count"])


@pytest.mark.parametrize("arguments", [{}, {"status": ["posted"], "kind": ["invoice"], "period": "2026-10"}],
                         ids=["default", "posted"])
def test_list_invoices(arguments):
    world = BillingWorld()
    assert_tool_is_flat(world.viewer, "list_invoices", arguments, world.grow, lambda p: p["count"])


@pytest.mark.parametrize("posted", [False, True], ids=["draft", "posted"])
def test_get_invoice_with_its_lines(posted):
    """MAIN's invoice, rebuilt from its pending items as they grow: a draft (with the stale check,
    which recalculates the lines' sources) and, posted, with its lines and credit notes."""
    from billing import invoicing
    from tests.billing.test_query_counts import OCTOBER

    world = BillingWorld()

    def grow(n: int) -> None:
        world.grow(n)
        for invoice in Invoice.objects.filter(client=world.main, status=Invoice.Status.POSTED):
            invoicing.invoice_credit(actor=world.clerk, invoice=invoice)
        draft = Invoice.objects.filter(client=world.main, status=Invoice.Status.DRAFT).first()
        if draft is None:
            invoicing.run_build(actor=world.clerk, period=OCTOBER, client_ids=[world.main.pk])
            draft = Invoice.objects.get(client=world.main, status=Invoice.Status.DRAFT)
        else:
            draft = invoicing.invoice_refresh(actor=world.clerk, invoice=draft)
        if posted:
            invoicing.invoice_post(actor=world.clerk, invoice=draft)

    def arguments():
        return {"invoice": Invoice.objects.filter(client=world.main, kind=Invoice.Kind.INVOICE).latest("id").pk}

    assert_tool_is_flat(world.viewer, "get_invoice", arguments, grow, lambda payload: len(payload["lines"]),
                        ceiling="get_invoice" if posted else "get_invoice (draft)")
