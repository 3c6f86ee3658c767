"""The REST permission matrices, held against the MCP tools: the same expectations
(tests/permission_matrix.py and the billing matrix), the same worlds, one tool call per case
through the SDK's client (in-process transport, tools run inline in the test's transaction).

A refusal is a tool error with the REST status: hidden 404 (a reference to an invisible project
or ticket in a create: 400 `does_not_exist`), denied 403, no user 401 `invalid_token`; and a
refused call writes nothing. A tool of settlements, tickets or billing missing from these maps
fails `test_every_tool_is_in_a_matrix`."""

import base64

import anyio
import pytest
from mcp.client import Client

from billing.querysets import MISSING_BILLING_PERMISSION_MESSAGE
from config.mcp import build_server, load_tools
from tests.billing.test_api_permissions import HELD, NEEDED, REQUIRED_PERMISSION, SUBJECTS, snapshot, subject
from tests.billing.test_api_permissions import build_world as build_billing_world
from tests.permission_matrix import (
    DENIED,
    HIDDEN,
    OK,
    ROLES,
    UNAUTHENTICATED,
    expected,
    expected_settlement,
)
from tests.settlements.test_permission_matrix import PDF, build_settlement_world, settlement_state
from tests.tickets.test_permission_matrix import build_world as build_ticket_world
from tickets.models import Ticket, TimeEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inline_orm(monkeypatch):
    # Inline tools use the ORM on the thread that runs the client's event loop: the test's own.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def call(actor, tool: str, arguments: dict):
    """One tool call as `actor` (None: no valid token), through the SDK client and server."""
    server = build_server(lambda ctx: actor, inline=True)

    async def run():
        async with Client(server) as client:
            return await client.call_tool(tool, arguments)

    return anyio.run(run)


def assert_outcome(result, outcome: str, *, create: bool = False) -> None:
    payload = result.structured_content
    if outcome == OK:
        assert not result.is_error, payload
        return
    assert result.is_error, payload
    if outcome == UNAUTHENTICATED:
        assert (payload["status"], payload["code"]) == (401, "invalid_token")
    elif outcome == HIDDEN and create:
        assert (payload["status"], payload["code"]) == (400, "does_not_exist"), payload
    else:
        assert payload["status"] == {HIDDEN: 404, DENIED: 403}[outcome], payload


def assert_case(result, outcome: str, *, action: str, listed: tuple[str, object], unchanged) -> None:
    """A list holds the case's object exactly when the role may read it (`listed`: the row field
    and value naming it); any other call answers as the matrix says, and a refusal writes nothing."""
    if action == "list" and outcome != UNAUTHENTICATED:
        field, value = listed
        assert not result.is_error, result.structured_content
        assert (value in [row[field] for row in result.structured_content["results"]]) is (outcome == OK)
        return
    assert_outcome(result, outcome, create=action == "create")
    if outcome != OK:
        assert unchanged(), "a refused call wrote something"


# --- Settlements --------------------------------------------------------------------------

def _settlement_arguments(world) -> dict:
    _, project, settlement, linked, free = world
    attachment = settlement.attachments.get()
    ref = {"settlement": settlement.pk}
    return {
        "list": ("list_settlements", {"page_size": 100}),
        "retrieve": ("get_settlement", ref),
        "create": ("create_settlement", {"name": "New", "period_start": "2026-11-01", "period_end": "2026-11-30",
                                         "projects": [project.key]}),
        "update": ("update_settlement", {**ref, "name": "Renamed"}),
        "delete": ("delete_settlement", ref),
        "transition": ("change_settlement_status", {**ref, "status": "sent"}),
        "link": ("link_ticket_to_settlement", {**ref, "ticket": free.key}),
        "unlink": ("unlink_ticket_from_settlement", {**ref, "ticket": linked.key}),
        "linked_tickets": ("list_settlement_tickets", ref),
        "attachments": ("list_settlement_attachments", ref),
        "upload": ("add_settlement_attachment", {**ref, "filename": "b.pdf",
                                                 "content_base64": base64.b64encode(PDF).decode()}),
        "download": ("get_settlement_attachment", {**ref, "attachment_id": attachment.pk}),
        "attachment_delete": ("delete_settlement_attachment", {**ref, "attachment_id": attachment.pk}),
    }


# Tools that read a settlement's parts follow the matrix row of reading the settlement.
SETTLEMENT_ROW = {"linked_tickets": "retrieve"}
SETTLEMENT_TOOL_ACTIONS = ("list", "retrieve", "create", "update", "delete", "transition", "link", "unlink",
                           "linked_tickets", "attachments", "upload", "download", "attachment_delete")
SETTLEMENT_CASES = [(action, role, own) for action in SETTLEMENT_TOOL_ACTIONS for role in ROLES
                    for own in (True, False)]


@pytest.mark.parametrize("case", SETTLEMENT_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{'own' if c[2] else 'foreign'}")
def test_settlement_tools_follow_the_settlement_matrix(case):
    action, role, own = case
    outcome = expected_settlement(SETTLEMENT_ROW.get(action, action), role, own=own)
    world = build_settlement_world(role, own)
    tool, arguments = _settlement_arguments(world)[action]
    before = settlement_state()
    result = call(world[0], tool, arguments)
    assert_case(result, outcome, action=action, listed=("id", world[2].pk),
                unchanged=lambda: settlement_state() == before)


# --- Tickets ------------------------------------------------------------------------------

def _ticket_arguments(world) -> dict:
    return {
        ("ticket", "list"): ("search_tickets", {"page_size": 100}),
        ("ticket", "retrieve"): ("get_ticket", {"ticket": world.ticket.key}),
        ("ticket", "update"): ("update_ticket", {"ticket": world.ticket.key, "title": "Renamed"}),
        ("time_entry", "create"): ("log_time", {"ticket": world.ticket.key, "work_date": "2026-10-01",
                                                "minutes": 30}),
    }


TICKET_TOOL_CASES = [(resource, action, role, own) for resource, action in
                     (("ticket", "list"), ("ticket", "retrieve"), ("ticket", "update"), ("time_entry", "create"))
                     for role in ROLES for own in (True, False)]


def _ticket_rows() -> tuple:
    return list(Ticket.objects.values_list("pk", "title")), TimeEntry.objects.count()


@pytest.mark.parametrize("case", TICKET_TOOL_CASES,
                         ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-{'own' if c[3] else 'foreign'}")
def test_ticket_tools_follow_the_ticket_matrix(case):
    resource, action, role, own = case
    outcome = expected(resource, action, role, own=own)
    world = build_ticket_world(role, own=own)
    tool, arguments = _ticket_arguments(world)[(resource, action)]
    before = _ticket_rows()
    result = call(world.actor, tool, arguments)
    assert_case(result, outcome, action=action, listed=("key", world.ticket.key),
                unchanged=lambda: _ticket_rows() == before)


# --- Billing ------------------------------------------------------------------------------

def _billing_arguments(world) -> dict:
    return {
        "list_billing_items": ("read", {"client": world.client.pk}),
        "recalculate_billing": ("manage", {"client": world.client.pk}),
        "get_recalculation": ("read", {"task_id": "task-1"}),  # the id build_world gives its run
        "list_invoices": ("read", {}),
        "get_invoice": ("read", {"invoice": world.posted.number}),
    }


BILLING_TOOLS = ("list_billing_items", "recalculate_billing", "get_recalculation", "list_invoices", "get_invoice")
BILLING_CASES = [(tool, name) for tool in BILLING_TOOLS for name in SUBJECTS]


@pytest.mark.parametrize(("tool", "name"), BILLING_CASES, ids=[f"{t}-{n}" for t, n in BILLING_CASES])
def test_billing_tools_follow_the_billing_matrix(tool, name):
    world = build_billing_world()
    needs, arguments = _billing_arguments(world)[tool]
    before = snapshot()
    result = call(subject(name, world), tool, arguments)
    payload = result.structured_content
    if name == "anonymous":
        assert (payload["status"], payload["code"]) == (401, "invalid_token")
    elif HELD[name] < NEEDED[needs]:
        assert (payload["status"], payload["code"]) == (403, "missing_permission")
        assert payload["detail"] == MISSING_BILLING_PERMISSION_MESSAGE.format(permission=REQUIRED_PERMISSION[needs])
    else:
        assert not result.is_error, payload
        if "results" in payload:
            assert payload["count"] >= 1
        return
    assert snapshot() == before, "a refused call wrote something"


def test_every_tool_is_in_a_matrix():
    settlement_tools = {tool for tool, _ in _settlement_arguments(_AnyWorld()).values()}
    ticket_tools = {tool for tool, _ in _ticket_arguments(_AnyWorld()).values()}
    assert settlement_tools | ticket_tools | set(BILLING_TOOLS) == set(load_tools())


class _AnyWorld:
    """Stands in for a world when only the tool names matter."""

    pk = key = 1

    def __getattr__(self, name):
        return self

    def __getitem__(self, index):
        return self

    def __iter__(self):
        return iter([self] * 5)

    def get(self):
        return self
