"""Schemathesis against the live OpenAPI schema (/api/schema/): every operation, as a project
Owner (who is also billing staff) and as a Viewer, each with a real Bearer token.

The checks kept (DESIGN.md): no 5xx, and responses that match the schema: a documented status
code, a documented content type, a body that conforms. Requests go in-process to Django's WSGI
handler; every generated case runs inside a savepoint that is rolled back, so no case sees
another's writes. Path parameters are either generated or taken from the seeded rows (ids, keys,
usernames, tokens), so that detail routes reach real objects.

Failures are collected, not raised, so one run reports every finding (and Hypothesis does not
spend the budget shrinking); the run is derandomized, so CI sees the same cases every time.
"""

import time
from dataclasses import dataclass, field
from datetime import date

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing import invoicing
from billing.reconciliation import Scope, reconcile_now
from rbac import services as rbac_services
from settlements import services as settlement_services
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ExpenseFactory,
    ProjectFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
    grant,
)
from tests.tally import tally

pytestmark = pytest.mark.django_db

# Examples per operation and identity (valid and invalid requests mixed): 115 operations × 2
# identities × 15 = 3450 cases, about a minute and a half of CPU (two minutes on a busy 2-core box).
MAX_EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def wsgi_app(settings, tmp_path):
    """Django's own WSGI handler, kept inside the test's transaction: it normally closes
    "obsolete" connections when a request starts and ends, which would end that transaction.
    Files go to a local folder of the test's own (the S3 path has its own tests)."""
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@dataclass
class World:
    """The seeded rows, and the tokens of the identities the fuzzer acts as."""

    tokens: dict[str, str] = field(default_factory=dict)
    values: dict[str, list] = field(default_factory=dict)


def _seed() -> World:
    from billing.models import BillingItem, Invoice, ReconciliationRun
    from tests.billing.conftest import grant_billing

    mnx, acme = ProjectFactory(key="MNX"), ProjectFactory(key="ACME")
    owner = grant_billing(UserFactory(username="owner"), "billing.admin")
    viewer = UserFactory(username="viewer")
    for project in (mnx, acme):
        grant(owner, project, "owner")
        grant(viewer, project, "viewer")
    rbac_services.role_create(actor=owner, project=mnx, slug="reader", name="Reader",
                              permissions=["tickets:read", "settlements:read"])
    tickets = [TicketFactory(project=project, title=f"Ticket {n}") for project in (mnx, acme) for n in range(3)]
    entries = [TimeEntryFactory(ticket=ticket, user=owner, minutes=90, work_date=date(2026, 9, 10 + n))
               for n, ticket in enumerate(tickets)]
    expenses = [ExpenseFactory(ticket=ticket, user=owner, date=date(2026, 9, 12)) for ticket in tickets[:2]]

    def settlement(name, month, linked):
        made = settlement_services.settlement_create(actor=owner, name=name, period_start=date(2026, month, 1),
                                                     period_end=date(2026, month, 28), projects=[mnx, acme])
        for ticket in linked:
            settlement_services.settlement_link_ticket(actor=owner, settlement=made, ticket=ticket)
        return made

    from django.core.files.uploadedfile import SimpleUploadedFile

    draft = settlement("Draft", 9, tickets[:2])
    attachment = settlement_services.attachment_upload(
        actor=owner, settlement=draft, uploaded=SimpleUploadedFile("notes.txt", b"hello", "text/plain"))
    sent = settlement("Sent", 8, tickets[2:4])
    settlement_services.settlement_transition(actor=owner, settlement=sent, status="sent")
    link, share_token = settlement_services.share_link_create(actor=owner, settlement=sent)

    customer = ClientFactory(name="Fjord AS")
    other = ClientFactory(name="Other AS")
    contract = ContractFactory(client=customer, projects=[mnx, acme], valid_from=date(2026, 1, 1))
    from billing import services as billing_services

    sales_line = billing_services.sales_line_create(actor=owner, client=other, date=date(2026, 9, 3),
                                                    description="Setup", qty="1", unit_price="500.00")
    reconcile_now(Scope(), trigger="manual")
    build = invoicing.run_build(actor=owner, period=date(2026, 9, 1))
    drafts = list(Invoice.objects.filter(run=build.run).order_by("pk"))
    posted = invoicing.invoice_post(actor=owner, invoice=drafts[-1])
    run = ReconciliationRun.objects.order_by("-pk").first()

    world = World()
    for name, user in (("owner", owner), ("viewer", viewer)):
        world.tokens[name] = rbac_services.api_token_create(actor=user, user=user, name="fuzz")[1]
    world.values = {
        "project": [mnx.key, acme.key],
        "ticket": [ticket.key for ticket in tickets[:3]] + [str(tickets[3].pk)],
        "time-entries": [entry.pk for entry in entries[:3]],
        "expenses": [expense.pk for expense in expenses],
        "settlements": [draft.pk, sent.pk],
        "attachment_id": [attachment.pk],
        "link_id": [link.pk],
        "username": ["owner", "viewer"],
        "users": [owner.pk, viewer.pk],
        "tokens": [],
        "slug": ["owner", "viewer", "reader"],
        "clients": [customer.pk, other.pk],
        "contracts": [contract.pk],
        "sales-lines": [sales_line.pk],
        "items": list(BillingItem.objects.order_by("pk").values_list("pk", flat=True)[:4]),
        "item_id": list(BillingItem.objects.filter(invoice__in=[*drafts, posted]).values_list("pk", flat=True)[:3]),
        "reconciliation-runs": [run.pk],
        "task_id": [run.task_id] if run.task_id else [],
        "runs": [build.run.pk],
        "invoices": [invoice.pk for invoice in drafts],
        "logs": [],
        "token": [share_token],
    }
    return world


def _candidates(world: World, path: str, names: list[str]) -> list[dict]:
    """Known values for the operation's path parameters (every combination is not needed:
    values are zipped, so one candidate per seeded row)."""
    if not names:
        return []
    per_name = {}
    for name in names:
        if name == "key":
            per_name[name] = world.values["project" if path.startswith("/api/projects/") else "ticket"]
        elif name in ("project_key",):
            per_name[name] = world.values["project"]
        elif name == "ticket_ref":
            per_name[name] = world.values["ticket"]
        elif name == "id":
            resource = path.split("/")[-3] if path.endswith("/{id}/") else path.split("/{id}/")[0].rsplit("/", 1)[-1]
            per_name[name] = world.values.get(resource, [])
        else:
            per_name[name] = world.values.get(name, [])
        if not per_name[name]:
            return []
    longest = max(len(values) for values in per_name.values())
    return [{name: values[i % len(values)] for name, values in per_name.items()} for i in range(longest)]


@dataclass
class Findings:
    cases: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def _fuzz_operation(operation, *, world: World, identity: str, findings: Findings) -> None:
    names = [parameter.name for parameter in operation.path_parameters]
    strategies = []
    for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        strategies.extend(operation.as_strategy(generation_mode=mode, path_parameters=known)
                          for known in _candidates(world, operation.path, names))
    headers = {"Authorization": f"Bearer {world.tokens[identity]}"}

    @FUZZ_SETTINGS
    @given(case=st.one_of(strategies))
    def run(case):
        findings.cases += 1
        with transaction.atomic():
            response = case.call(headers=headers)
            transaction.set_rollback(True)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            titles = ", ".join(sorted({failure.title for failure in group.exceptions}))
            key = f"{identity} {operation.label} → {response.status_code}: {titles}"
            findings.failures.setdefault(key, str(group)[:3000])

    run()


def test_every_operation_answers_as_documented(wsgi_app):
    world = _seed()
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    findings = Findings()
    started = time.monotonic()
    durations = {}
    for identity in ("owner", "viewer"):
        for operation in operations:
            began = time.monotonic()
            _fuzz_operation(operation, world=world, identity=identity, findings=findings)
            durations[f"{identity} {operation.label}"] = time.monotonic() - began
    tally("fuzz", findings.cases)
    slowest = ", ".join(f"{label} {seconds:.1f}s" for label, seconds in
                        sorted(durations.items(), key=lambda item: -item[1])[:5])
    print(f"schemathesis: {len(operations)} operations, {findings.cases} cases in "
          f"{time.monotonic() - started:.0f}s; slowest: {slowest}")
    assert not findings.failures, "\n\n".join(f"{key}\n{detail}" for key, detail in sorted(findings.failures.items()))
