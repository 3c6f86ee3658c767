"""The billing REST permission matrix: every billing endpoint × anonymous, a plain user, a
project owner without billing rights, billing.view, billing.manage, billing.admin and a superuser.
Anonymous is 401; a level below the endpoint's is 403 `missing_permission` and writes nothing;
each level includes the lower ones. Billing is global: there is no per-object 404 here.
A route missing from the matrix fails `test_every_billing_operation_is_in_the_matrix`."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission

from billing import invoicing, services
from billing import models as billing
from billing.querysets import MISSING_BILLING_PERMISSION_MESSAGE
from tests.billing.conftest import grant_billing, reconcile
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    TicketFactory,
    TimeEntryFactory,
    UserFactory,
    grant,
)

pytestmark = pytest.mark.django_db

BASE = "/api/billing/"
SUBJECTS = ("anonymous", "plain", "project_owner", "view", "manage", "admin", "superuser")
# What each subject holds, and what each endpoint needs, on one scale.
HELD = {"plain": 0, "project_owner": 0, "view": 1, "manage": 2, "admin": 3, "superuser": 3}
NEEDED = {"read": 1, "manage": 2, "admin": 3}
REQUIRED_PERMISSION = {"read": "billing.view", "manage": "billing.manage", "admin": "billing.admin"}


@dataclass
class World:
    client: billing.Client            # has a contract, a sales line and items
    spare_client: billing.Client      # nothing attached: deletable
    contract: billing.Contract
    spare_contract: billing.Contract  # no items: deletable
    line: billing.SalesLine
    pending: billing.BillingItem
    void: billing.BillingItem
    run: billing.ReconciliationRun    # has an unmatched source and a task id
    log: billing.BillingLog
    open_run: billing.BillingRun      # October, another client: one draft with two lines
    draft: billing.Invoice
    draft_line: billing.BillingItem
    posted_run: billing.BillingRun    # September, that client: posted
    posted: billing.Invoice
    posted_line: billing.BillingItem


def build_world() -> World:
    root = UserFactory(username="root", is_superuser=True)
    mnx, orphan = ProjectFactory(key="MNX"), ProjectFactory(key="ORPH")
    client = ClientFactory(name="Fjord AS")
    contract = ContractFactory(client=client, projects=[mnx], valid_from=date(2026, 1, 1))
    spare_contract = ContractFactory(client=client, name="Later", valid_from=date(2030, 1, 1))
    ticket = TicketFactory(project=mnx)
    TimeEntryFactory(ticket=ticket, work_date=date(2026, 10, 1))
    TimeEntryFactory(ticket=ticket, work_date=date(2026, 10, 2))
    TimeEntryFactory(ticket=TicketFactory(project=orphan), work_date=date(2026, 10, 3))
    harbour, hvn = ClientFactory(name="Havn AS"), ProjectFactory(key="HVN")
    ContractFactory(client=harbour, projects=[hvn], valid_from=date(2026, 1, 1))
    for day in (date(2026, 9, 1), date(2026, 9, 2), date(2026, 10, 1), date(2026, 10, 2)):
        TimeEntryFactory(ticket=TicketFactory(project=hvn), work_date=day)
    line = services.sales_line_create(actor=root, client=client, date=date(2026, 10, 4), description="Workshop",
                                      qty=Decimal("1"), unit_price=Decimal("100"))
    run = reconcile()
    billing.ReconciliationRun.objects.filter(pk=run.pk).update(task_id="task-1")
    pending, void = billing.BillingItem.objects.filter(source_type="ticket_time", client=client).order_by("pk")
    void = services.item_void(actor=root, item=void, reason="Goodwill")
    log = billing.BillingLog.objects.order_by("pk").first()
    posted_run = invoicing.run_build(actor=root, period=date(2026, 9, 1), client_ids=[harbour.pk],
                                     include_prior_periods=False).run
    posted = invoicing.run_post(actor=root, run=posted_run)[0]
    open_run = invoicing.run_build(actor=root, period=date(2026, 10, 1), client_ids=[harbour.pk]).run
    draft = billing.Invoice.objects.get(run=open_run)
    return World(client=client, spare_client=ClientFactory(name="Spare"), contract=contract,
                 spare_contract=spare_contract, line=line, pending=pending, void=void, run=run, log=log,
                 open_run=open_run, draft=draft, draft_line=draft.items.order_by("pk").first(),
                 posted_run=posted_run, posted=posted, posted_line=posted.items.order_by("pk").first())


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str                 # formatted with the World's attributes
    needs: str                # read / manage / admin
    ok: int
    payload: dict | None = None

    def url(self, world: World) -> str:
        return BASE + self.path.format(w=world)


ENDPOINTS = [
    Endpoint("clients-list", "get", "clients/", "read", 200),
    Endpoint("clients-retrieve", "get", "clients/{w.client.pk}/", "read", 200),
    Endpoint("clients-create", "post", "clients/", "manage", 201, {"name": "New AS", "currency": "NOK"}),
    Endpoint("clients-update", "patch", "clients/{w.client.pk}/", "manage", 200, {"org_number": "123"}),
    Endpoint("clients-replace", "put", "clients/{w.client.pk}/", "manage", 200,
             {"name": "Fjord AS", "currency": "NOK", "org_number": "9"}),
    Endpoint("clients-delete", "delete", "clients/{w.spare_client.pk}/", "manage", 204),
    Endpoint("contracts-list", "get", "contracts/", "read", 200),
    Endpoint("contracts-retrieve", "get", "contracts/{w.contract.pk}/", "read", 200),
    Endpoint("contracts-create", "post", "contracts/", "manage", 201,
             {"client": "{w.client.pk}", "name": "New", "projects": ["ORPH"], "valid_from": "2026-01-01",
              "hourly_rate": "900", "rates": {"design": "1000"}}),
    Endpoint("contracts-update", "patch", "contracts/{w.contract.pk}/", "manage", 200, {"hourly_rate": "1100"}),
    Endpoint("contracts-replace", "put", "contracts/{w.contract.pk}/", "manage", 200,
             {"client": "{w.client.pk}", "name": "Renamed", "valid_from": "2026-01-01", "hourly_rate": "1000"}),
    Endpoint("contracts-delete", "delete", "contracts/{w.spare_contract.pk}/", "manage", 204),
    Endpoint("sales-lines-list", "get", "sales-lines/", "read", 200),
    Endpoint("sales-lines-retrieve", "get", "sales-lines/{w.line.pk}/", "read", 200),
    Endpoint("sales-lines-create", "post", "sales-lines/", "manage", 201,
             {"client": "{w.client.pk}", "date": "2026-10-05", "description": "Extra", "qty": "1",
              "unit_price": "50"}),
    Endpoint("sales-lines-update", "patch", "sales-lines/{w.line.pk}/", "manage", 200, {"qty": "2"}),
    Endpoint("sales-lines-replace", "put", "sales-lines/{w.line.pk}/", "manage", 200,
             {"client": "{w.client.pk}", "date": "2026-10-04", "description": "Workshop", "qty": "3",
              "unit_price": "100"}),
    Endpoint("sales-lines-delete", "delete", "sales-lines/{w.line.pk}/", "manage", 204),
    Endpoint("items-list", "get", "items/", "read", 200),
    Endpoint("items-retrieve", "get", "items/{w.pending.pk}/", "read", 200),
    Endpoint("items-void", "post", "items/{w.pending.pk}/void/", "manage", 200, {"reason": "Not billable"}),
    Endpoint("items-restore", "post", "items/{w.void.pk}/restore/", "manage", 200),
    Endpoint("runs-list", "get", "reconciliation-runs/", "read", 200),
    Endpoint("runs-retrieve", "get", "reconciliation-runs/{w.run.pk}/", "read", 200),
    Endpoint("runs-unmatched", "get", "reconciliation-runs/{w.run.pk}/unmatched/", "read", 200),
    Endpoint("logs-list", "get", "logs/", "read", 200),
    Endpoint("logs-retrieve", "get", "logs/{w.log.pk}/", "read", 200),
    Endpoint("recalculate", "post", "recalculate/", "manage", 202, {"period": "2026-10"}),
    Endpoint("recalculate-status", "get", "recalculate/task-1/", "read", 200),
    Endpoint("settings-read", "get", "settings/", "read", 200),
    Endpoint("settings-change", "patch", "settings/", "admin", 200, {"default_vat_rate": "0.15"}),
    Endpoint("billing-runs-list", "get", "runs/", "read", 200),
    Endpoint("billing-runs-retrieve", "get", "runs/{w.open_run.pk}/", "read", 200),
    Endpoint("billing-runs-build", "post", "runs/", "manage", 201, {"period": "2026-10", "clients": ["{w.client.pk}"]}),
    Endpoint("billing-runs-delete", "delete", "runs/{w.open_run.pk}/", "manage", 204),
    Endpoint("billing-runs-post", "post", "runs/{w.open_run.pk}/post/", "admin", 200),
    Endpoint("billing-runs-export", "get", "runs/{w.posted_run.pk}/export/", "read", 200),
    Endpoint("invoices-list", "get", "invoices/", "read", 200),
    Endpoint("invoices-retrieve", "get", "invoices/{w.draft.pk}/", "read", 200),
    Endpoint("invoices-post", "post", "invoices/{w.draft.pk}/post/", "admin", 200),
    Endpoint("invoices-refresh", "post", "invoices/{w.draft.pk}/refresh/", "manage", 200),
    Endpoint("invoices-remove-line", "post", "invoices/{w.draft.pk}/lines/{w.draft_line.pk}/remove/", "manage", 200,
             {"void_reason": "Goodwill"}),
    Endpoint("invoices-credit", "post", "invoices/{w.posted.pk}/credit/", "admin", 201,
             {"items": ["{w.posted_line.pk}"]}),
    Endpoint("invoices-debit", "post", "invoices/{w.posted.pk}/debit/", "admin", 201,
             {"item": "{w.posted_line.pk}", "qty": "1", "unit_price": "100", "description": "Extra review"}),
    Endpoint("invoices-pdf", "get", "invoices/{w.posted.pk}/pdf/", "read", 200),
    Endpoint("invoices-export", "get", "invoices/{w.posted.pk}/export/", "read", 200),
]


def subject(name: str, world: World):
    if name == "anonymous":
        return None
    if name == "superuser":
        return UserFactory(username="boss", is_superuser=True)
    user = UserFactory(username=name)
    if name == "project_owner":
        grant(user, ProjectFactory(key="OWN"), "owner")
        grant(user, world.contract.projects.get(), "owner")
    elif name != "plain":
        grant_billing(user, f"billing.{name}")
    return user


def expected(endpoint: Endpoint, name: str) -> int:
    if name == "anonymous":
        return 401
    return endpoint.ok if HELD[name] >= NEEDED[endpoint.needs] else 403


def fill(value, world: World):
    """Payload values may name World attributes, e.g. "{w.client.pk}"."""
    if isinstance(value, dict):
        return {key: fill(item, world) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, world) for item in value]
    if isinstance(value, str) and value.startswith("{w."):
        return int(value.format(w=world))
    return value


def snapshot() -> tuple:
    """Everything a billing request could change."""
    settings = billing.BillingSettings.load()
    return (list(billing.Client.objects.values_list("pk", "org_number")),
            list(billing.Contract.objects.values_list("pk", "hourly_rate")),
            list(billing.SalesLine.objects.values_list("pk", "qty")),
            list(billing.BillingItem.objects.values_list("pk", "status")),
            billing.ReconciliationRun.objects.count(), billing.UnmatchedSource.objects.count(),
            billing.BillingLog.objects.count(),
            (settings.default_vat_rate, settings.manual_recalculation),
            list(billing.BillingRun.objects.values_list("pk", "status")),
            list(billing.Invoice.objects.values_list("pk", "status", "number", "built_at")),
            list(billing.BillingItem.objects.values_list("pk", "invoice_id", "run_id", "void_reason")))


CASES = [(endpoint, name) for endpoint in ENDPOINTS for name in SUBJECTS]


@pytest.mark.parametrize(("endpoint", "name"), CASES, ids=[f"{e.name}-{n}" for e, n in CASES])
def test_billing_permission_matrix(client_for, endpoint, name):
    world = build_world()
    api = client_for(subject(name, world))
    before = snapshot()
    request = getattr(api, endpoint.method)
    response = request(endpoint.url(world), fill(endpoint.payload, world), format="json") if endpoint.payload \
        else request(endpoint.url(world))

    status = expected(endpoint, name)
    assert response.status_code == status, response.content
    if status == 401:
        assert response.json()["code"] == "not_authenticated"
    elif status == 403:
        body = response.json()
        assert body["code"] == "missing_permission"
        assert body["detail"] == MISSING_BILLING_PERMISSION_MESSAGE.format(
            permission=REQUIRED_PERMISSION[endpoint.needs])
    if status in (401, 403):
        assert snapshot() == before, "a refused request wrote something"
    elif endpoint.method == "get" and response["Content-Type"] == "application/json" and "results" in response.json():
        assert response.json()["count"] >= 1  # lists show the world to whoever may read it


class _AnyObject:
    """Stands in for the World when only a URL's shape matters: every attribute, and pk, is 1."""

    pk = 1

    def __getattr__(self, name):
        return self


def _operation(callback, method: str):
    actions = getattr(callback, "actions", None)
    return (callback.cls.__name__, actions[method]) if actions else (callback.view_class.__name__, method)


def _operations(callback) -> set:
    if getattr(callback, "actions", None):
        return {_operation(callback, method) for method in callback.actions}
    view = callback.view_class
    return {(view.__name__, m) for m in view.http_method_names if m not in ("head", "options") and hasattr(view, m)}


def test_every_billing_operation_is_in_the_matrix():
    from django.urls import resolve

    from billing.api import urls

    routed = set().union(*(_operations(pattern.callback) for pattern in urls.urlpatterns))
    covered = {_operation(resolve(BASE + endpoint.path.format(w=_AnyObject())).func, endpoint.method)
               for endpoint in ENDPOINTS}
    assert routed == covered


def test_refusal_comes_before_the_body_is_read(client_for):
    viewer = grant_billing(UserFactory(username="viewer"), "billing.view")
    response = client_for(viewer).post(f"{BASE}clients/", "{not json", content_type="application/json")
    assert response.status_code == 403 and response.json()["code"] == "missing_permission"


def test_billing_rights_through_a_group(client_for):
    group = Group.objects.create(name="Billing staff")
    group.permissions.add(Permission.objects.get(content_type__app_label="billing", codename="manage"))
    clerk = UserFactory(username="clerk")
    clerk.groups.add(group)
    api = client_for(clerk)
    assert api.get(f"{BASE}items/").status_code == 200
    assert api.post(f"{BASE}clients/", {"name": "Via group", "currency": "NOK"}).status_code == 201
    assert api.patch(f"{BASE}settings/", {"default_vat_rate": "0.1"}).json()["code"] == "missing_permission"


def test_inactive_user_is_refused(client_for):
    user = grant_billing(UserFactory(username="gone", is_active=False), "billing.admin")
    assert client_for(user).get(f"{BASE}items/").status_code == 403
