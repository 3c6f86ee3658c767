"""The interface permission matrix: every REST operation of /api/schema/ and every MCP tool ×
14 subjects (anonymous; bad, revoked and expired tokens; non-member; Viewer, Member, Admin, Owner
and a custom role in HOME; superuser; billing.view/manage/admin) × object scope (own, foreign,
mixed) → the status and error code tests/security/interface_matrix.py expects.

Requests carry real personal API tokens (`Authorization: Bearer`), and MCP calls look the actor up
from the same tokens (the stdio server's lookup) through the SDK's in-process client. One world per
module; every request runs inside `transaction.atomic()` and is rolled back, so one subject's write
never changes the world of the next. One test per operation, each listing all its mismatches.

Every body is also searched for sentinels of what the subject may not see: AWAY's ticket titles,
descriptions, settlement names and numbers, the AWAY ticket's money in the mixed settlement, and
(without settlements:read) any settlement data at all."""

import json
import re

import anyio
import pytest
from django.db import transaction
from mcp.client import Client
from rest_framework.test import APIClient

from config.mcp import build_server, stdio_actor
from core.mcp import TOOLS, ToolSpec
from tests.conftest import service_available
from tests.tally import tally

from .interface_matrix import MCP, REGISTRY, REST, Call, Expect, mcp_tools, registry_mismatch, rest_operations
from .world import (
    BILLING_SUBJECTS,
    LEAK_AMOUNTS,
    LEAK_DESCRIPTION,
    LEAK_SETTLEMENT,
    LEAK_TITLE,
    SETTLEMENT_MARK,
    SUBJECTS,
    build_world,
)

pytestmark = pytest.mark.django_db

# Subjects holding settlements:read in HOME (so they may see HOME's and the mixed settlement's data).
SETTLEMENT_READERS = frozenset({"admin", "owner", "custom", "superuser"})


@pytest.fixture(scope="module")
def world(request, django_db_setup, django_db_blocker):
    """Built once for the module, inside a transaction rolled back at its end."""
    if service_available("s3"):
        request.getfixturevalue("s3_bucket")
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def inline_orm(monkeypatch):
    # In-process MCP tools use the ORM on the thread that runs the client's event loop: the test's own.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# --- Calling ----------------------------------------------------------------------------------------

def rest_client(world, subject_name: str, address: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)  # the customer page throttles per address
    client.raise_request_exception = False  # a crash is a 500 in the report, not the end of the test
    token = world.subjects[subject_name].token
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def send(client: APIClient, call: Call):
    if call.method == "get":
        return client.get(call.path, call.query or {})
    if call.multipart:
        return client.post(call.path, call.body, format="multipart")
    request = getattr(client, call.method)
    return request(call.path, call.body, format="json") if call.body is not None else request(call.path)


def rest_answer(response) -> tuple[int, str | None, object, str]:
    """Status, error code, JSON body (or None) and the body as text (streams read to the end)."""
    # A stream is read to the end: the test client then closes the response itself, keeping the
    # connection (a second close() would close the test's connection mid-transaction).
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    text = raw.decode("utf-8", errors="replace")
    body = None
    if response.get("Content-Type", "").startswith("application/json") and raw:
        body = json.loads(raw)
    code = body.get("code") if isinstance(body, dict) and response.status_code >= 400 else None
    return response.status_code, code, body, text


def mcp_server(world, subject_name: str):
    """An in-process server whose actor comes from the subject's token, as over stdio."""
    if subject_name not in world.mcp_servers:
        token = world.subjects[subject_name].token
        lookup = stdio_actor(token) if token else (lambda ctx: None)
        world.mcp_servers[subject_name] = build_server(lookup, inline=True)
    return world.mcp_servers[subject_name]


def mcp_answer(world, subject_name: str, call: Call) -> tuple[int, str | None, object, str]:
    server = mcp_server(world, subject_name)

    async def run():
        async with Client(server) as client:
            return await client.call_tool(call.path, call.body)

    result = anyio.run(run)
    payload = result.structured_content or {}
    text = json.dumps(payload, ensure_ascii=False) + "".join(getattr(block, "text", "") for block in result.content)
    if result.is_error:
        return payload.get("status", 500), payload.get("code"), payload, text
    return 200, None, payload, text


# --- Checking ---------------------------------------------------------------------------------------

def leaks(text: str, subject: str, family: str, world) -> list[str]:
    """Sentinels in `text` that `subject` may not see through an operation of `family`."""
    if family == "public":
        return []  # the share token shows the customer the whole settlement, by design
    billing_staff_on_billing = family == "billing" and subject in BILLING_SUBJECTS
    found = []
    if subject != "superuser" and not billing_staff_on_billing:
        found += [mark for mark in (LEAK_TITLE, LEAK_DESCRIPTION, LEAK_SETTLEMENT) if mark in text]
        found += [number for number in world.foreign_numbers if re.search(rf"\b{number}(?!\d)", text)]
        found += [pattern.pattern for pattern in LEAK_AMOUNTS if pattern.search(text)]
    if subject not in SETTLEMENT_READERS and not billing_staff_on_billing:
        found += [mark for mark in (SETTLEMENT_MARK, '"is_frozen"') if mark in text]
    return found


def check(entry, world, subject: str, scope: str, answer) -> str | None:
    """None when the answer is the expected one and leaks nothing; else what went wrong."""
    status, code, body, text = answer
    want: Expect = entry.rule(subject, scope)
    problems = []
    if status != want.status or (want.codes and code not in want.codes):
        problems.append(f"expected {want}, got {status} {code or ''}".rstrip())
    elif want.listed is not None and entry.listed(body, world, scope) != want.listed:
        problems.append(f"expected {want}, got {'listed' if not want.listed else 'not listed'}")
    leaked = leaks(text, subject, entry.family, world)
    if leaked:
        problems.append(f"leaked {leaked}")
    if not problems:
        return None
    return f"{subject:>14} × {scope:<7}: {'; '.join(problems)}; body: {' '.join(text.split())[:240]}"


def run_matrix(key: str, world, answer_of) -> None:
    entry = REGISTRY[key]
    failures, checks = [], 0
    for subject in SUBJECTS:
        for scope in entry.scopes:
            call = entry.call(world, scope, world.subjects[subject])
            with transaction.atomic():
                answer = answer_of(subject, call)
                transaction.set_rollback(True)
            checks += 1
            failure = check(entry, world, subject, scope, answer)
            if failure:
                failures.append(failure)
    tally("permission", checks)
    assert not failures, f"{key}: {len(failures)} of {checks} checks failed:\n" + "\n".join(failures)


# --- The matrix ---------------------------------------------------------------------------------------

REST_KEYS = sorted(REST)


@pytest.mark.parametrize("key", REST_KEYS)
def test_rest_operation(key, world):
    index = REST_KEYS.index(key)

    def answer_of(subject, call):
        address = f"10.{index % 250}.{SUBJECTS.index(subject)}.1"
        return rest_answer(send(rest_client(world, subject, address), call))

    run_matrix(key, world, answer_of)


@pytest.mark.parametrize("key", sorted(MCP))
def test_mcp_tool(key, world):
    run_matrix(key, world, lambda subject, call: mcp_answer(world, subject, call))


# --- The registry is the interface ------------------------------------------------------------------

def test_registry_covers_every_operation_and_tool_exactly():
    assert registry_mismatch(rest_operations() | mcp_tools()) == {"missing": [], "stale": []}


def test_a_new_route_or_tool_without_an_entry_fails(monkeypatch):
    """The check above goes red for a route or tool added without a registry entry, and for an
    entry whose operation is gone."""
    routed = rest_operations(urlconf="tests.security.dummy_urls")
    assert registry_mismatch(routed | mcp_tools()) == {"missing": ["GET /api/matrix-dummy/"], "stale": []}

    gone = rest_operations() - {"DELETE /api/tokens/{id}/"}
    assert registry_mismatch(gone | mcp_tools()) == {"missing": [], "stale": ["DELETE /api/tokens/{id}/"]}

    spec = ToolSpec("matrix_dummy_tool", lambda *, actor: None, "A tool nobody registered.", True, False)
    monkeypatch.setitem(TOOLS, "matrix_dummy_tool", spec)
    assert registry_mismatch(rest_operations() | mcp_tools()) == {"missing": ["mcp:matrix_dummy_tool"], "stale": []}


# --- What a reader of one project sees of a cross-project settlement --------------------------------

def test_mixed_settlement_shows_only_the_readable_projects_tickets_and_money(world):
    """SPEC §3 lists only the tickets of projects the reader can read and is silent on totals: so
    the AWAY ticket's hours and money are left out of its line, the grand total and the count too,
    through REST and MCP alike. The superuser sees the whole settlement."""
    mixed = world.draft["mixed"]
    home_ticket = world.linked["mixed"]
    for subject, minutes, count in (("admin", 60, 1), ("custom", 60, 1), ("superuser", 1457, 2)):
        api = rest_client(world, subject, "10.255.0.1")
        detail = api.get(f"/api/settlements/{mixed.pk}/").json()
        assert (detail["totals"]["minutes"], detail["ticket_count"]) == (minutes, count), subject
        row = next(row for row in api.get("/api/settlements/").json()["results"] if row["id"] == mixed.pk)
        assert (row["totals"]["minutes"], row["ticket_count"]) == (minutes, count), subject
        tickets = api.get(f"/api/settlements/{mixed.pk}/tickets/").json()
        assert len(tickets) == count and home_ticket.key in [ticket["key"] for ticket in tickets]
        status, _, payload, _ = mcp_answer(world, subject, Call("mcp", "get_settlement", {"settlement": mixed.pk}))
        assert status == 200
        assert (payload["totals"]["minutes"], payload["ticket_count"], len(payload["tickets"])) == (
            minutes, count, count), subject
    tally("permission", 3 * 4)


def test_ticket_payloads_carry_settlement_data_only_with_settlements_read(world):
    """The HOME ticket of the mixed settlement: Viewer and Member (no settlements:read) get no
    settlement keys at all; the Admin gets the settlement it sits in."""
    key = world.linked["mixed"].key
    for subject, shown in (("viewer", False), ("member", False), ("admin", True), ("custom", True)):
        body = rest_client(world, subject, "10.255.1.1").get(f"/api/tickets/{key}/").json()
        assert ("settlements" in body, "is_frozen" in body) == (shown, shown), subject
        status, _, payload, _ = mcp_answer(world, subject, Call("mcp", "get_ticket", {"ticket": key}))
        assert status == 200 and ("settlements" in payload) is shown, subject
        if shown:
            assert [row["id"] for row in body["settlements"]] == [world.draft["mixed"].pk]
    tally("permission", 4 * 2)
