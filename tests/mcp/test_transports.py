"""The MCP server end to end, through the SDK's client: over streamable HTTP (config.asgi on a real
uvicorn) and over stdio (a real `manage.py mcp` process), against PostgreSQL."""

import base64
import os
from datetime import date

import httpx2
import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone
from mcp.shared.exceptions import MCPError

from config.mcp import load_tools
from rbac import services as rbac_services
from settlements.guards import TICKET_FROZEN_MESSAGE
from settlements.mcp import INVALID_BASE64_MESSAGE
from settlements.models import Settlement, SettlementAttachment, SettlementEvent
from tests.factories import ProjectFactory, TicketFactory, UserFactory, grant
from tests.mcp.conftest import connected, http_transport, stdio_parameters, token_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(4096) + bytes(range(256))


@pytest.fixture
def world():
    """Owner of MNX and OPS; a member of MNX (tickets only) who is also settlements-blind."""
    mnx, ops = ProjectFactory(key="MNX"), ProjectFactory(key="OPS")
    owner, member = UserFactory(username="olga"), UserFactory(username="milo")
    grant(owner, mnx, "owner")
    grant(owner, ops, "owner")
    grant(member, mnx, "member")
    tickets = [TicketFactory(project=mnx, title="Login page"), TicketFactory(project=mnx, title="Invoices"),
               TicketFactory(project=ops, title="Backups")]
    return {"mnx": mnx, "ops": ops, "owner": owner, "member": member, "tickets": tickets}


def ok(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def refused(result, code: str, status: int) -> dict:
    assert result.is_error, result.structured_content
    payload = result.structured_content
    assert (payload["code"], payload["status"]) == (code, status), payload
    assert payload["detail"] in result.content[0].text
    return payload


@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_every_tool_is_listed_with_a_described_input_schema(world, over_http, over_stdio, transport):
    connect = over_http if transport == "http" else over_stdio
    with connect(world["owner"]) as client:
        tools = {tool.name: tool for tool in client.tools()}
    assert set(tools) == set(load_tools())
    assert {"list_settlements", "get_settlement", "create_settlement", "update_settlement", "delete_settlement",
            "change_settlement_status", "link_ticket_to_settlement", "unlink_ticket_from_settlement",
            "list_settlement_tickets", "add_settlement_attachment", "get_settlement_attachment",
            "list_settlement_attachments", "delete_settlement_attachment", "search_tickets", "get_ticket",
            "update_ticket", "log_time", "list_billing_items", "recalculate_billing", "list_invoices",
            "get_invoice"} <= set(tools)
    for tool in tools.values():
        assert len(tool.description) > 30, tool.name
        schema = tool.input_schema
        assert schema["type"] == "object"
        for name, field in schema.get("properties", {}).items():
            assert field.get("description"), f"{tool.name}.{name} has no description"
    assert tools["delete_settlement"].annotations.destructive_hint is True
    assert tools["list_settlements"].annotations.read_only_hint is True
    assert tools["change_settlement_status"].input_schema["properties"]["status"]["enum"] == ["draft", "sent", "paid"]


def test_the_settlement_lifecycle_through_tools_over_http(world, over_http):
    first, second, backups = world["tickets"]
    with over_http(world["owner"]) as client:
        created = ok(client.call("create_settlement", name="October", period_start="2026-10-01",
                                 period_end="2026-10-31", projects=["MNX", "OPS"], notes="Monthly"))
        number = created["number"]
        assert (created["status"], created["projects"], created["sent_at"]) == ("draft", ["MNX", "OPS"], None)
        for ticket in (first.key, second.pk, backups.key):
            ok(client.call("link_ticket_to_settlement", settlement=number, ticket=ticket))
        refused(client.call("link_ticket_to_settlement", settlement=number, ticket=first.key), "already_linked", 409)
        listed = ok(client.call("list_settlement_tickets", settlement=number))["tickets"]
        assert [(row["key"], row["title"], row["status"]) for row in listed] == [
            (first.key, "Login page", first.status), (second.key, "Invoices", second.status),
            (backups.key, "Backups", backups.status)]
        ok(client.call("unlink_ticket_from_settlement", settlement=number, ticket=second.key))
        ok(client.call("update_settlement", settlement=created["id"], name="October 2026", notes="Final"))
        attached = ok(client.call("add_settlement_attachment", settlement=number, filename="report.png",
                                  content_base64=base64.b64encode(PNG).decode(), category="report"))
        found = ok(client.call("get_settlement", settlement=number))
        assert found["name"] == "October 2026" and found["notes"] == "Final"
        assert [row["key"] for row in found["tickets"]] == [first.key, backups.key]
        assert [(row["id"], row["category"], row["state"]) for row in found["attachments"]] == [
            (attached["id"], "report", "draft")]
        assert ok(client.call("list_settlements", status=["draft"]))["count"] == 1

        sent = ok(client.call("change_settlement_status", settlement=number, status="sent"))
        assert sent["status"] == "sent" and sent["sent_at"]
        payload = refused(client.call("change_settlement_status", settlement=number, status="sent"),
                          "invalid_transition", 409)
        assert payload["allowed"] == ["draft", "paid"]
        refused(client.call("update_settlement", settlement=number, name="Late"), "settlement_not_draft", 409)
        refused(client.call("delete_settlement_attachment", settlement=number, attachment_id=attached["id"]),
                "settlement_not_draft", 409)
        paid = ok(client.call("change_settlement_status", settlement=number, status="paid"))
        assert paid["paid_at"] and paid["sent_at"] == sent["sent_at"]
        back = ok(client.call("change_settlement_status", settlement=number, status="sent"))
        assert back["paid_at"] is None and back["sent_at"] == sent["sent_at"]
        draft = ok(client.call("change_settlement_status", settlement=number, status="draft"))
        assert draft["sent_at"] is None

        ok(client.call("delete_settlement_attachment", settlement=number, attachment_id=attached["id"]))
        assert ok(client.call("list_settlement_attachments", settlement=number))["attachments"] == []
        ok(client.call("delete_settlement", settlement=number))
        refused(client.call("get_settlement", settlement=number), "not_found", 404)
    settlement = Settlement.objects.get(pk=created["id"])
    assert not settlement.is_active
    kinds = list(SettlementEvent.objects.filter(settlement=settlement).order_by("id").values_list("kind", flat=True))
    assert kinds[0] == "created" and kinds[-1] == "deleted" and kinds.count("transitioned") == 4


@pytest.mark.parametrize("transport", ["http", "stdio"])
def test_an_attachment_round_trips_byte_identical_and_bad_base64_is_refused(world, over_http, over_stdio,
                                                                             transport):
    connect = over_http if transport == "http" else over_stdio
    with connect(world["owner"]) as client:
        number = ok(client.call("create_settlement", name="S", period_start="2026-10-01", period_end="2026-10-31",
                                projects=["MNX"]))["number"]
        wrapped = base64.encodebytes(PNG).decode()  # MIME line breaks are accepted
        attached = ok(client.call("add_settlement_attachment", settlement=number, filename="scan.png",
                                  content_base64=wrapped, state="signed"))
        result = client.call("get_settlement_attachment", settlement=number, attachment_id=attached["id"])
        fetched = ok(result)
        assert base64.b64decode(fetched["content_base64"]) == PNG
        assert all(fetched["content_base64"][:100] not in block.text for block in result.content)
        assert (fetched["filename"], fetched["mime_type"], fetched["size"], fetched["state"]) == (
            "scan.png", "image/png", len(PNG), "signed")
        bad = refused(client.call("add_settlement_attachment", settlement=number, filename="x.png",
                                  content_base64="not*base64!"), "invalid_base64", 400)
        assert bad["detail"] == INVALID_BASE64_MESSAGE
        refused(client.call("add_settlement_attachment", settlement=number, filename="x.png",
                            content_base64=base64.b64encode(b"%PDF-1.4 not a png").decode()), "content_mismatch", 400)
        refused(client.call("add_settlement_attachment", settlement=number, filename="x.exe",
                            content_base64=base64.b64encode(b"MZ").decode()), "extension_not_allowed", 400)
    assert SettlementAttachment.objects.count() == 1


def test_a_file_over_the_mcp_cap_is_refused_by_the_tool_with_a_pointer_to_the_rest_upload(world, over_http,
                                                                                          settings):
    # The default cap, as the served app was built with it: the transport lets the file through,
    # the tool refuses it with its own error.
    content = PNG[:8] + os.urandom(settings.MCP_ATTACHMENT_MAX_BYTES + 1 - 8)
    with over_http(world["owner"]) as client:
        created = ok(client.call("create_settlement", name="S", period_start="2026-10-01", period_end="2026-10-31",
                                 projects=["MNX"]))
        payload = refused(client.call("add_settlement_attachment", settlement=created["number"],
                                      filename="big.png", content_base64=base64.encodebytes(content).decode()),
                          "file_too_large", 413)
    assert f"/api/settlements/{created['id']}/attachments/" in payload["detail"]
    assert not SettlementAttachment.objects.exists()


def test_a_frozen_ticket_takes_only_a_status_change(world, over_http):
    ticket = world["tickets"][0]
    with over_http(world["owner"]) as client:
        number = ok(client.call("create_settlement", name="S", period_start="2026-10-01", period_end="2026-10-31",
                                projects=["MNX"]))["number"]
        ok(client.call("link_ticket_to_settlement", settlement=number, ticket=ticket.key))
        ok(client.call("change_settlement_status", settlement=number, status="sent"))
        payload = refused(client.call("update_ticket", ticket=ticket.key, title="Renamed"), "ticket_frozen", 403)
        assert payload["detail"] == TICKET_FROZEN_MESSAGE.format(ticket=ticket.key, settlement=number, status="sent")
        refused(client.call("update_ticket", ticket=ticket.key, status="done", priority="high"), "ticket_frozen", 403)
        refused(client.call("log_time", ticket=ticket.key, minutes=30, work_date="2026-10-05"), "ticket_frozen", 403)
        moved = ok(client.call("update_ticket", ticket=ticket.key, status="done"))
        assert (moved["status"], moved["title"], moved["is_frozen"]) == ("done", "Login page", True)
        assert moved["settlements"][0]["number"] == number


def test_without_settlements_read_no_settlement_data_reaches_the_agent(world, over_http):
    ticket = world["tickets"][0]
    settlement = None
    with over_http(world["owner"]) as client:
        settlement = ok(client.call("create_settlement", name="Secret", period_start="2026-10-01",
                                    period_end="2026-10-31", projects=["MNX"]))
        ok(client.call("link_ticket_to_settlement", settlement=settlement["number"], ticket=ticket.key))
        ok(client.call("change_settlement_status", settlement=settlement["number"], status="sent"))
        assert ok(client.call("get_ticket", ticket=ticket.key))["settlements"]
    with over_http(world["member"]) as client:
        seen = ok(client.call("get_ticket", ticket=ticket.key))
        found = ok(client.call("search_tickets", query="Login"))["results"]
        for payload in (seen, found[0]):
            assert "settlements" not in payload and "is_frozen" not in payload
        result = client.call("get_ticket", ticket=ticket.key)
        assert "Secret" not in str(result.content) and settlement["number"] not in str(result.content)
        assert ok(client.call("list_settlements"))["count"] == 0
        refused(client.call("get_settlement", settlement=settlement["number"]), "not_found", 404)
        refused(client.call("list_settlement_tickets", settlement=settlement["id"]), "not_found", 404)
        payload = refused(client.call("update_ticket", ticket=ticket.key, title="X"), "ticket_frozen", 403)
        assert settlement["number"] not in payload["detail"]
        refused(client.call("list_billing_items"), "missing_permission", 403)


def test_write_in_only_one_of_two_projects_cannot_create_a_cross_project_settlement(world, over_http):
    admin = UserFactory(username="ada")
    grant(admin, world["mnx"], "admin")
    grant(admin, world["ops"], "viewer")
    with over_http(admin) as client:
        payload = refused(client.call("create_settlement", name="Both", period_start="2026-10-01",
                                      period_end="2026-10-31", projects=["MNX", "OPS"]), "missing_permission", 403)
        assert payload["projects"] == ["OPS"]
        ok(client.call("create_settlement", name="Mine", period_start="2026-10-01", period_end="2026-10-31",
                       projects=["MNX"]))
    assert list(Settlement.objects.values_list("name", flat=True)) == ["Mine"]


def test_bad_input_is_a_tool_error_with_codes_not_a_bare_message(world, over_http):
    with over_http(world["owner"]) as client:
        missing = refused(client.call("create_settlement", name="S", period_start="2026-10-01"), "required", 400)
        assert set(missing["errors"]) == {"period_end", "projects"}
        refused(client.call("create_settlement", name="S", period_start="2026-10-31", period_end="2026-10-01",
                            projects=["MNX"]), "period_order", 400)
        refused(client.call("create_settlement", name="S", period_start="2026-10-01", period_end="2026-10-31",
                            projects=["NOPE"]), "does_not_exist", 400)
        refused(client.call("change_settlement_status", settlement="ROZ-1", status="archived"), "invalid_choice", 400)
        refused(client.call("list_settlements", page=0), "invalid", 400)
        refused(client.call("list_settlements", page=9), "not_found", 404)
        refused(client.call("get_settlement", settlement="nonsense"), "not_found", 404)
        refused(client.call("log_time", ticket=world["tickets"][0].key, minutes=5000), "invalid", 400)
        refused(client.call("no_such_tool"), "unknown_tool", 404)


def mcp_errors(excinfo) -> list[MCPError]:
    """The MCPErrors inside the (nested) exception groups the SDK's task groups raise."""
    found, pending = [], [excinfo.value]
    while pending:
        error = pending.pop()
        if isinstance(error, MCPError):
            found.append(error)
        pending.extend(getattr(error, "exceptions", ()))
    return found


def test_an_unknown_or_revoked_token_is_refused(world, asgi_url, over_stdio):
    token = token_for(world["owner"])
    with pytest.raises(BaseExceptionGroup) as excinfo, connected(http_transport(asgi_url, "not-a-token")):
        pass
    assert mcp_errors(excinfo)
    response = httpx2.post(asgi_url + "/mcp/", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                           headers={"Authorization": "Bearer not-a-token", "Accept": "application/json"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert httpx2.post(asgi_url + "/mcp/", json={}).status_code == 401
    # The process refuses the token and exits before the handshake.
    with pytest.raises(BaseExceptionGroup) as excinfo, connected(stdio_parameters("not-a-token")):
        pass
    assert [error.error.message for error in mcp_errors(excinfo)] == ["Connection closed"]
    with connected(http_transport(asgi_url, token)) as http, connected(stdio_parameters(token)) as stdio:
        ok(http.call("list_settlements"))
        ok(stdio.call("list_settlements"))
        rbac_services.api_token_revoke(actor=world["owner"], token=world["owner"].api_tokens.get())
        refused(stdio.call("list_settlements"), "invalid_token", 401)
        with pytest.raises(MCPError):  # every HTTP request is authenticated again: 401
            http.call("list_settlements")


def test_host_patterns_follow_django(world, asgi_url, settings):
    settings.MCP_ALLOWED_HOSTS = [".example.com"]
    auth = {"Authorization": f"Bearer {token_for(world['owner'])}"}
    assert httpx2.post(asgi_url + "/mcp/", json={}, headers={**auth, "Host": "api.example.com"}).status_code != 421
    assert httpx2.post(asgi_url + "/mcp/", json={}, headers={**auth, "Host": "example.org"}).status_code == 421


def test_tool_calls_leave_no_database_connection_open(world, over_http, monkeypatch):
    # As in production: connections that could be reused for a minute (tests set 0 otherwise).
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 60)

    def others() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid()")
            return cursor.fetchone()[0]

    before = others()
    with over_http(world["owner"]) as client:
        for _ in range(6):
            ok(client.call("search_tickets"))
    assert others() <= before


def test_unknown_hosts_and_origins_are_refused_and_django_still_answers_beside(world, asgi_url):
    auth = {"Authorization": f"Bearer {token_for(world['owner'])}"}
    assert httpx2.post(asgi_url + "/mcp/", json={}, headers={**auth, "Host": "evil.example"}).status_code == 421
    response = httpx2.post(asgi_url + "/mcp", json={}, headers={**auth, "Origin": "http://evil.example"})
    assert response.status_code == 403
    assert httpx2.get(asgi_url + "/health/").status_code == 200
    assert httpx2.get(asgi_url + "/mcp/other").status_code == 404


def test_the_lifecycle_over_stdio_and_log_time(world, over_stdio):
    ticket = world["tickets"][0]
    with over_stdio(world["owner"]) as client:
        number = ok(client.call("create_settlement", name="S", period_start="2026-10-01", period_end="2026-10-31",
                                projects=["MNX"]))["number"]
        ok(client.call("link_ticket_to_settlement", settlement=number, ticket=ticket.key))
        entry = ok(client.call("log_time", ticket=ticket.key, minutes=90, work_date="2026-10-05",
                               activity="design", description="Mockups"))
        assert (entry["minutes"], entry["user"], entry["activity"]) == (90, "olga", "design")
        today = ok(client.call("log_time", ticket=ticket.key, minutes=15))
        assert today["work_date"] == timezone.localdate().isoformat()
        ok(client.call("change_settlement_status", settlement=number, status="sent"))
        refused(client.call("update_ticket", ticket=ticket.key, title="No"), "ticket_frozen", 403)
    assert Settlement.objects.get(prefix=number.split("-")[0], number=int(number.split("-")[1])).status == "sent"
    assert date.fromisoformat(entry["work_date"]) == date(2026, 10, 5)
