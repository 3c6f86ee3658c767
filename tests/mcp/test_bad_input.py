"""Odd arguments get a tool error with a code, never a crash (`server_error`), and write nothing;
a caller without rights learns nothing from validation messages (rights are checked first)."""

from datetime import date

import pytest

from rbac import services as rbac_services
from settlements import services as settlement_services
from settlements.models import Settlement, SettlementAttachment
from tests.billing.conftest import grant_billing
from tests.factories import ProjectFactory, TicketFactory, UserFactory, grant
from tests.mcp.test_permission_matrix import call, inline_orm  # noqa: F401  (the fixture is autouse)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    project = ProjectFactory(key="MNX")
    user = UserFactory(username="olga")
    grant(user, project, "owner")
    grant_billing(user, "billing.manage")
    TicketFactory(project=project, title="Login")
    settlement_services.settlement_create(actor=user, name="S", period_start=date(2026, 10, 1),
                                          period_end=date(2026, 10, 31), projects=[project])
    return user


ODD_CALLS = [
    ("get_settlement", {"settlement": "²"}, "not_found"),
    ("get_settlement", {"settlement": "9" * 40}, "not_found"),
    ("get_ticket", {"ticket": "²"}, "not_found"),
    ("get_ticket", {"ticket": "MNX-" + "9" * 30}, "not_found"),
    ("link_ticket_to_settlement", {"settlement": "ROZ-1", "ticket": "¹²"}, "does_not_exist"),
    ("unlink_ticket_from_settlement", {"settlement": "ROZ-1", "ticket": "²"}, "not_found"),
    ("get_invoice", {"invoice": "²"}, "not_found"),
    ("get_invoice", {"invoice": "x\x00"}, "null_character"),
    ("list_billing_items", {"ticket": "²"}, None),
    ("get_recalculation", {"task_id": "a\x00b"}, "invalid"),
    ("get_recalculation", {"task_id": "a b"}, "invalid"),
    ("search_tickets", {"query": "Log\x00in"}, "null_character"),
    ("search_tickets", {"project": ["MNX\x00"]}, "null_character"),
    ("create_settlement", {"name": "A", "period_start": "2026-02-30", "period_end": "2026-03-01",
                           "projects": ["MNX"]}, "invalid"),
    ("add_settlement_attachment", {"settlement": "ROZ-1", "filename": "", "content_base64": "QQ=="}, "invalid"),
    ("add_settlement_attachment", {"settlement": "ROZ-1", "filename": "..", "content_base64": "QQ=="},
     "invalid_filename"),
    ("add_settlement_attachment", {"settlement": "ROZ-1", "filename": "a.txt", "content_base64": "QQ"},
     "invalid_base64"),
    ("list_settlements", {"page_size": 1000}, "invalid"),
    ("log_time", {"ticket": "MNX-1", "minutes": 30, "work_date": "yesterday"}, "invalid"),
    ("update_ticket", {"ticket": "MNX-1", "priority": "urgent"}, "invalid_choice"),
]


@pytest.mark.parametrize(("tool", "arguments", "code"), ODD_CALLS,
                         ids=[f"{tool}-{index}" for index, (tool, _, _) in enumerate(ODD_CALLS)])
def test_odd_arguments_are_refused_with_a_code_and_write_nothing(owner, tool, arguments, code):
    before = (list(Settlement.objects.values_list("pk", "name", "status")), SettlementAttachment.objects.count())
    result = call(owner, tool, arguments)
    payload = result.structured_content
    if code is None:  # a filter that matches nothing
        assert not result.is_error and payload["count"] == 0, payload
        return
    assert result.is_error and payload["code"] == code, payload
    assert payload["status"] < 500
    assert (list(Settlement.objects.values_list("pk", "name", "status")),
            SettlementAttachment.objects.count()) == before


def test_a_reader_learns_nothing_from_validation(owner):
    viewer = UserFactory(username="vera")
    grant(viewer, owner.memberships.get().project, "viewer")
    for assignee in ("nosuchuser", "olga"):
        payload = call(viewer, "update_ticket", {"ticket": "MNX-1", "assignee": assignee}).structured_content
        assert (payload["status"], payload["code"]) == (403, "missing_permission"), payload
    # Settlement readers without write rights: the same refusal whatever the ticket named.
    reader = UserFactory(username="rita")
    project = owner.memberships.get().project
    rbac_services.role_create(actor=owner, project=project, slug="auditor", name="Auditor",
                              permissions=["settlements:read", "tickets:read"])
    grant(reader, project, "auditor")
    for ticket in ("MNX-1", "MNX-404"):
        result = call(reader, "link_ticket_to_settlement", {"settlement": "ROZ-1", "ticket": ticket})
        payload = result.structured_content
        assert (payload["status"], payload["code"]) == (403, "missing_permission"), payload
