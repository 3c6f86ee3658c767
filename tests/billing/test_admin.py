"""The billing admin (SPEC §4): billing permissions instead of Django's model permissions, every
write through the billing services (overlap check, billing lock, reconciliation), read-only
records, void/restore and recalculation as admin actions, and a run page that follows progress."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.test import Client as BrowserClient

from billing import services
from billing.choices import ItemStatus, LogAction, RunStatus, RunTrigger, SourceType
from billing.models import BillingItem, BillingLog, BillingSettings, Client, Contract, ContractRate, ReconciliationRun
from billing.reconciliation import Scope
from tests.billing.conftest import grant_billing
from tests.factories import ClientFactory, ContractFactory, ProjectFactory, TimeEntryFactory, UserFactory
from tests.helpers import admin_form_data

pytestmark = pytest.mark.django_db

ADMIN = "/admin/billing"
MODELS = ["client", "contract", "salesline", "billingitem", "reconciliationrun", "unmatchedsource", "billinglog",
          "billingsettings"]
RECORD_MODELS = ["billingitem", "reconciliationrun", "unmatchedsource", "billinglog"]
INLINE_MANAGEMENT = {f"rates-{key}": value for key, value in (("TOTAL_FORMS", 0), ("INITIAL_FORMS", 0),
                                                               ("MIN_NUM_FORMS", 0), ("MAX_NUM_FORMS", 1000))}


def staff(level: str | None, username: str | None = None):
    """A staff user holding billing.<level> (None: no billing permission)."""
    user = UserFactory(username=username or f"billing-{level}", is_staff=True)
    return grant_billing(user, f"billing.{level}") if level else user


def login(user) -> BrowserClient:
    browser = BrowserClient()
    browser.force_login(user)
    return browser


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def action_names(response) -> list[str]:
    form = response.context["action_form"]
    return [] if form is None else [name for name, _label in form.fields["action"].choices if name]


@pytest.fixture
def viewer():
    return staff("view")


@pytest.fixture
def manager():
    return staff("manage")


@pytest.fixture
def billing_admin():
    return staff("admin")


@pytest.fixture
def alpha():
    return ProjectFactory(key="ALPHA")


@pytest.fixture
def bravo():
    return ProjectFactory(key="BRAVO")


@pytest.fixture
def acme():
    return ClientFactory(name="Acme AS")


@pytest.fixture
def contract(acme, alpha):
    return ContractFactory(client=acme, name="Acme support", projects=[alpha], valid_from=date(2026, 1, 1),
                           valid_to=date(2026, 12, 31), hourly_rate=Decimal("1000.00"))


@pytest.fixture
def sources(contract, alpha, bravo):
    """Two hours in ALPHA (covered by the contract) and one in BRAVO (no contract: unmatched)."""
    matched = TimeEntryFactory(ticket__project=alpha, minutes=120, description="Covered work")
    unmatched = TimeEntryFactory(ticket__project=bravo, minutes=60, description="Uncovered work")
    return matched, unmatched


@pytest.fixture
def item(sources):
    services.recalculate_now(actor=None, scope=Scope())
    return BillingItem.objects.get(source_type=SourceType.TICKET_TIME, source_id=sources[0].pk)


# --- Who gets in --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
def test_staff_without_billing_permissions_get_403(model, acme):
    browser = login(staff(None, "no-billing"))
    for url in (f"{ADMIN}/{model}/", f"{ADMIN}/{model}/add/"):
        assert browser.get(url).status_code == 403, url
    assert browser.get(f"{ADMIN}/client/{acme.pk}/change/").status_code == 403
    assert browser.get(f"{ADMIN}/reconciliationrun/recalculate/").status_code == 403
    assert "Billing" not in browser.get("/admin/").content.decode()


@pytest.mark.parametrize("model", MODELS)
def test_billing_viewers_see_every_list_but_add_nothing(viewer, model):
    browser = login(viewer)
    assert browser.get(f"{ADMIN}/{model}/", follow=True).status_code == 200
    assert browser.get(f"{ADMIN}/{model}/add/").status_code == 403


def test_billing_viewers_read_a_client_but_cannot_change_it(viewer, acme):
    browser = login(viewer)
    url = f"{ADMIN}/client/{acme.pk}/change/"
    page = browser.get(url)
    assert page.status_code == 200
    assert "Acme AS" in page.content.decode() and 'name="_save"' not in page.content.decode()
    assert browser.post(url, {"name": "Renamed", "currency": "NOK", "vat_rate": "0.25",
                              "time_zone": "Europe/Oslo"}).status_code == 403
    assert browser.post(f"{ADMIN}/client/{acme.pk}/delete/", {"post": "yes"}).status_code == 403
    acme.refresh_from_db()
    assert acme.name == "Acme AS"
    listing = browser.get(f"{ADMIN}/client/")
    assert action_names(listing) == []


def test_billing_viewers_read_a_contract_with_its_projects(viewer, contract):
    page = login(viewer).get(f"{ADMIN}/contract/{contract.pk}/change/").content.decode()
    assert "ALPHA" in page and 'name="project_choices"' not in page


def test_managers_add_and_change_clients_through_the_services(manager):
    browser = login(manager)
    response = browser.post(f"{ADMIN}/client/add/", {"name": "Nordic AS", "org_number": "999888777",
                                                      "currency": "NOK", "vat_rate": "0.25",
                                                      "time_zone": "Europe/Oslo", "is_active": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    client = Client.objects.get(name="Nordic AS")
    url = f"{ADMIN}/client/{client.pk}/change/"
    response = browser.post(url, {**admin_form_data(browser.get(url)), "vat_rate": "0.15"})
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.vat_rate == Decimal("0.15")
    assert "recalculate_selected" in action_names(browser.get(f"{ADMIN}/client/"))


def test_deleting_a_client_in_use_is_refused_by_the_service(manager, contract, acme):
    response = login(manager).post(f"{ADMIN}/client/", {"action": "delete_selected_through_services",
                                                         "_selected_action": [acme.pk], "index": 0})
    assert response.status_code == 302
    assert Client.objects.filter(pk=acme.pk).exists()
    assert any("cannot be deleted" in message for message in messages_of(response))


# --- Settings -----------------------------------------------------------------------------------------

def test_settings_need_billing_admin(manager, billing_admin):
    settings = BillingSettings.load()
    url = f"{ADMIN}/billingsettings/{settings.pk}/change/"
    page = login(manager).get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert login(manager).post(url, {**admin_form_data(page), "manual_recalculation": ""}).status_code == 403

    browser = login(billing_admin)
    page = browser.get(url)
    data = admin_form_data(page)
    data.pop("manual_recalculation")  # unticked
    assert browser.post(url, data).status_code == 302
    settings.refresh_from_db()
    assert settings.manual_recalculation is False
    assert BillingLog.objects.get(action=LogAction.SETTINGS).actor == billing_admin


def test_settings_are_a_singleton(billing_admin):
    browser = login(billing_admin)
    assert browser.get(f"{ADMIN}/billingsettings/add/").status_code == 200  # no row yet
    response = browser.post(f"{ADMIN}/billingsettings/add/", {
        "reconcile_on_save": "on", "default_currency": "EUR", "default_vat_rate": "0.2",
        "default_time_zone": "Europe/Oslo"})
    assert response.status_code == 302
    settings = BillingSettings.objects.get()
    assert (settings.pk, settings.default_currency, settings.manual_recalculation) == (1, "EUR", False)
    assert browser.get(f"{ADMIN}/billingsettings/add/").status_code == 403
    assert browser.get(f"{ADMIN}/billingsettings/").url == f"{ADMIN}/billingsettings/1/change/"
    assert browser.post(f"{ADMIN}/billingsettings/1/delete/", {"post": "yes"}).status_code == 403
    assert BillingSettings.objects.count() == 1


# --- Contracts ----------------------------------------------------------------------------------------

def _contract_form(client, **fields) -> dict:
    return {"client": client.pk, "name": "New contract", "valid_from": "2026-01-01", "valid_to": "",
            "hourly_rate": "1200.00", **INLINE_MANAGEMENT, **fields}


def test_managers_add_a_contract_with_projects_and_a_rate_card(manager, acme, bravo):
    data = _contract_form(acme, project_choices=[bravo.pk], **{
        "rates-TOTAL_FORMS": 2, "rates-0-activity": "support", "rates-0-hourly_rate": "900.00",
        "rates-1-activity": "meeting", "rates-1-hourly_rate": "500.00"})
    response = login(manager).post(f"{ADMIN}/contract/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    contract = Contract.objects.get(name="New contract")
    assert list(contract.projects.all()) == [bravo]
    assert dict(contract.rates.values_list("activity", "hourly_rate")) == {"support": Decimal("900.00"),
                                                                           "meeting": Decimal("500.00")}


def test_overlapping_contract_is_refused_and_nothing_is_saved(manager, contract, acme, alpha):
    browser = login(manager)
    data = _contract_form(acme, valid_from="2026-06-01", project_choices=[alpha.pk], **{
        "rates-TOTAL_FORMS": 1, "rates-0-activity": "support", "rates-0-hourly_rate": "900.00"})
    response = browser.post(f"{ADMIN}/contract/add/", data)
    assert response.status_code == 302
    (message,) = messages_of(response)
    assert "ALPHA" in message and "(contract_overlap)" in message
    assert list(Contract.objects.all()) == [contract]
    assert not ContractRate.objects.exists()

    # The same on change: moving an existing contract into the other's time is refused whole.
    other = ContractFactory(client=acme, name="Later", valid_from=date(2027, 1, 1), projects=[alpha])
    url = f"{ADMIN}/contract/{other.pk}/change/"
    page = browser.get(url)
    response = browser.post(url, {**admin_form_data(page), "valid_from": "2026-12-01", "name": "Moved",
                                  "rates-TOTAL_FORMS": 1, "rates-0-activity": "support",
                                  "rates-0-hourly_rate": "700.00"})
    assert any("(contract_overlap)" in message for message in messages_of(response))
    other.refresh_from_db()
    assert (other.name, other.valid_from, other.rates.count()) == ("Later", date(2027, 1, 1), 0)


def test_changing_a_contract_replaces_its_rate_card_and_projects(manager, contract, alpha, bravo):
    ContractRate.objects.create(contract=contract, activity="support", hourly_rate=Decimal("800"))
    browser = login(manager)
    url = f"{ADMIN}/contract/{contract.pk}/change/"
    data = admin_form_data(browser.get(url))
    data.update({"rates-0-DELETE": "on", "rates-TOTAL_FORMS": 2, "rates-1-activity": "design",
                 "rates-1-hourly_rate": "1500.00", "project_choices": [alpha.pk, bravo.pk]})
    response = browser.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert dict(contract.rates.values_list("activity", "hourly_rate")) == {"design": Decimal("1500.00")}
    assert set(contract.projects.all()) == {alpha, bravo}


# --- Sales lines --------------------------------------------------------------------------------------

def test_sales_lines_are_saved_through_the_service_and_locked_lines_refused(manager, acme,
                                                                          django_capture_on_commit_callbacks):
    browser = login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(f"{ADMIN}/salesline/add/", {"client": acme.pk, "date": "2026-10-05",
                                                             "description": "Workshop", "qty": "2",
                                                             "unit_price": "5000"})
    assert response.status_code == 302, response.content.decode()[:2000]
    line = acme.sales_lines.get()
    assert line.created_by == manager
    item = BillingItem.objects.get(source_type=SourceType.SALES_ORDER, source_id=line.pk)  # reconciled on save
    assert item.total == Decimal("10000.00")

    BillingItem.objects.filter(pk=item.pk).update(status=ItemStatus.RESERVED)
    url = f"{ADMIN}/salesline/{line.pk}/change/"
    page = browser.get(url)
    assert "Locked (Draft)" in page.content.decode()
    response = browser.post(url, {**admin_form_data(page), "description": "Changed"})
    assert any("(locked_by_draft)" in message for message in messages_of(response))
    line.refresh_from_db()
    assert line.description == "Workshop"


# --- Billing items ------------------------------------------------------------------------------------

def test_item_list_shows_lock_badges_and_the_columns(viewer, item):
    reserved = BillingItem.objects.create(**{**_copy(item), "source_key": "sales_order:9", "source_id": 9,
                                             "source_type": SourceType.SALES_ORDER, "status": ItemStatus.RESERVED})
    BillingItem.objects.create(**{**_copy(item), "source_key": "sales_order:10", "source_id": 10,
                                  "source_type": SourceType.SALES_ORDER, "status": ItemStatus.INVOICED})
    browser = login(viewer)
    page = browser.get(f"{ADMIN}/billingitem/").content.decode()
    assert "Locked (Draft)" in page and "Locked (Posted)" in page
    assert item.source_key in page and "2000.00" in page and "Acme AS" in page
    assert f"/admin/tickets/timeentry/{item.source_id}/change/" in page
    filtered = browser.get(f"{ADMIN}/billingitem/", {"status__exact": "reserved"})
    assert list(filtered.context["cl"].result_list) == [reserved]
    found = browser.get(f"{ADMIN}/billingitem/", {"q": "ticket_time:"})
    assert list(found.context["cl"].result_list) == [item]
    assert action_names(browser.get(f"{ADMIN}/billingitem/")) == []


def _copy(item: BillingItem) -> dict:
    fields = ["source_date", "client_id", "contract_id", "description", "qty", "unit_price", "total", "currency",
              "vat_rate", "period_month", "period_start", "period_end"]
    return {name: getattr(item, name) for name in fields}


def test_item_page_links_the_item_it_supersedes_and_its_successor(viewer, item, sources):
    sources[0].minutes = 180
    sources[0].save()
    services.recalculate_now(actor=None, scope=Scope())
    item.refresh_from_db()
    successor = item.superseded_by
    assert item.status == ItemStatus.SUPERSEDED
    browser = login(viewer)
    old_page = browser.get(f"{ADMIN}/billingitem/{item.pk}/change/").content.decode()
    new_page = browser.get(f"{ADMIN}/billingitem/{successor.pk}/change/").content.decode()
    assert f"{ADMIN}/billingitem/{successor.pk}/change/" in old_page
    assert f"{ADMIN}/billingitem/{item.pk}/change/" in new_page
    assert 'name="_save"' not in old_page


def test_void_asks_for_a_reason_then_voids_through_the_service(manager, item):
    browser = login(manager)
    selection = {"action": "void_selected", "_selected_action": [item.pk]}
    page = browser.post(f"{ADMIN}/billingitem/", {**selection, "index": 0})
    assert page.status_code == 200
    assert 'name="reason"' in page.content.decode() and item.source_key in page.content.decode()

    again = browser.post(f"{ADMIN}/billingitem/", {**selection, "apply": "yes", "reason": ""})
    assert again.status_code == 200 and "This field is required" in again.content.decode()
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING

    response = browser.post(f"{ADMIN}/billingitem/", {**selection, "apply": "yes", "reason": "Goodwill"})
    assert response.status_code == 302
    assert "Voided 1 item(s)." in messages_of(response)
    item.refresh_from_db()
    assert (item.status, item.void_reason) == (ItemStatus.VOID, "Goodwill")
    assert BillingLog.objects.filter(action=LogAction.VOID, actor=manager).count() == 1

    # Voiding again is refused per item, with the service's code.
    response = browser.post(f"{ADMIN}/billingitem/", {**selection, "apply": "yes", "reason": "Twice"})
    assert any("(item_not_pending)" in message for message in messages_of(response))


def test_restore_returns_a_void_item_to_pending(manager, item):
    services.item_void(actor=manager, item=item, reason="Not now")
    response = login(manager).post(f"{ADMIN}/billingitem/", {"action": "restore_selected",
                                                              "_selected_action": [item.pk], "index": 0})
    assert response.status_code == 302
    assert "Restored 1 item(s)." in messages_of(response)
    item.refresh_from_db()
    assert (item.status, item.void_reason) == (ItemStatus.PENDING, "")


def test_viewers_cannot_void(viewer, item):
    response = login(viewer).post(f"{ADMIN}/billingitem/", {"action": "void_selected", "_selected_action": [item.pk],
                                                             "apply": "yes", "reason": "No"})
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING
    assert response.status_code in (200, 302)


# --- Read-only records --------------------------------------------------------------------------------

@pytest.mark.parametrize("model", RECORD_MODELS)
def test_records_refuse_add_change_and_delete_even_for_superusers(superuser, item, model):
    browser = login(superuser)
    record = {"billingitem": item, "reconciliationrun": item.reconciliation_run,
              "unmatchedsource": item.reconciliation_run.unmatched_sources.first(),
              "billinglog": BillingLog.objects.first()}[model]
    assert browser.get(f"{ADMIN}/{model}/add/").status_code == 403
    url = f"{ADMIN}/{model}/{record.pk}/change/"
    page = browser.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert browser.post(url, {}).status_code == 403
    assert browser.post(f"{ADMIN}/{model}/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(record).objects.filter(pk=record.pk).exists()
    assert "delete_selected_through_services" not in action_names(browser.get(f"{ADMIN}/{model}/"))


# --- Recalculation ------------------------------------------------------------------------------------

def test_recalculate_action_on_clients_starts_a_run_and_its_page_shows_counts_and_unmatched(manager, acme,
                                                                                            sources):
    browser = login(manager)
    response = browser.post(f"{ADMIN}/client/", {"action": "recalculate_selected", "_selected_action": [acme.pk],
                                                  "index": 0})
    run = ReconciliationRun.objects.get()
    assert response.status_code == 302 and response.url == f"{ADMIN}/reconciliationrun/{run.pk}/change/"
    assert (run.trigger, run.actor, run.scope, run.status) == (RunTrigger.MANUAL, manager, {"client_id": acme.pk},
                                                               RunStatus.SUCCEEDED)
    assert run.created == 1
    page = browser.get(response.url).content.decode()
    assert "client_id" in page and '<meta http-equiv="refresh"' not in page
    assert "1 / 1 clients" in page

    # Everything: the BRAVO entry no contract covers is listed on the run's page.
    response = browser.post(f"{ADMIN}/reconciliationrun/recalculate/", {"period": "2026-10"})
    run = ReconciliationRun.objects.latest("pk")
    assert response.url == f"{ADMIN}/reconciliationrun/{run.pk}/change/"
    assert (run.scope, run.unmatched, run.unchanged) == ({"period": "2026-10"}, 1, 1)
    page = browser.get(response.url).content.decode()
    assert f"ticket_time:{sources[1].pk}" in page and "No contract in force" in page and "BRAVO" in page
    unmatched_list = browser.get(f"{ADMIN}/unmatchedsource/", {"run": run.pk})
    assert [row.source_id for row in unmatched_list.context["cl"].result_list] == [sources[1].pk]


def test_recalculate_action_on_contracts_and_several_selected(manager, contract, acme):
    other = ContractFactory(client=acme, name="Second", valid_from=date(2027, 1, 1))
    response = login(manager).post(f"{ADMIN}/contract/", {"action": "recalculate_selected", "index": 0,
                                                          "_selected_action": [contract.pk, other.pk]})
    assert response.url == f"{ADMIN}/reconciliationrun/"
    assert sorted(run.scope["contract_id"] for run in ReconciliationRun.objects.all()) == [contract.pk, other.pk]
    assert any(message.startswith("Started 2 recalculations") for message in messages_of(response))


def test_recalculate_form_checks_its_input(manager, contract):
    browser = login(manager)
    page = browser.post(f"{ADMIN}/reconciliationrun/recalculate/", {"period": "2026-13"})
    assert page.status_code == 200 and "is not a period" in page.content.decode()
    other_client = ClientFactory(name="Other AS")
    page = browser.post(f"{ADMIN}/reconciliationrun/recalculate/", {"client": other_client.pk,
                                                                     "contract": contract.pk})
    assert "not to client" in page.content.decode()
    assert not ReconciliationRun.objects.exists()
    assert "Recalculate billing" in browser.get(f"{ADMIN}/reconciliationrun/").content.decode()


def test_recalculation_switched_off_is_an_error_message(manager, acme):
    BillingSettings.objects.create(pk=1, manual_recalculation=False)
    browser = login(manager)
    response = browser.post(f"{ADMIN}/client/", {"action": "recalculate_selected", "_selected_action": [acme.pk],
                                                  "index": 0})
    assert any("(manual_recalculation_disabled)" in message for message in messages_of(response))
    page = browser.post(f"{ADMIN}/reconciliationrun/recalculate/", {}, follow=True).content.decode()
    assert "manual_recalculation_disabled" in page
    assert not ReconciliationRun.objects.exists()


def test_viewers_cannot_recalculate(viewer, acme):
    browser = login(viewer)
    assert browser.get(f"{ADMIN}/reconciliationrun/recalculate/").status_code == 403
    assert "recalculate/" not in browser.get(f"{ADMIN}/reconciliationrun/").content.decode()
    browser.post(f"{ADMIN}/client/", {"action": "recalculate_selected", "_selected_action": [acme.pk], "index": 0})
    assert not ReconciliationRun.objects.exists()


def test_a_running_run_shows_progress_and_refreshes_itself(viewer):
    run = ReconciliationRun.objects.create(trigger=RunTrigger.MANUAL, status=RunStatus.RUNNING, total=6, processed=3)
    page = login(viewer).get(f"{ADMIN}/reconciliationrun/{run.pk}/change/").content.decode()
    assert '<meta http-equiv="refresh" content="2">' in page
    assert '<progress value="3" max="6">' in page and "3 / 6 clients" in page
    queued = ReconciliationRun.objects.create(trigger=RunTrigger.MANUAL)
    page = login(viewer).get(f"{ADMIN}/reconciliationrun/{queued.pk}/change/").content.decode()
    assert '<meta http-equiv="refresh"' in page and "Waiting for a worker" in page
