"""The billing workbench at /admin/billing/ (SPEC §4 "Admin workbench") and the run and invoice
admin screens: grouping, lock and stale badges, the include-prior toggle, every action through the
services (recalculate, build with dry run, remove from run, refresh, post, credit), permission
refusals, and a paginated item list whose query count does not grow with the period's size."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import invoicing, periods
from billing.admin import DRAFTS_SHOWN, WORKBENCH_PAGE_SIZE
from billing.choices import ItemStatus, LogAction, RunTrigger, SourceType
from billing.models import BillingItem, BillingLog, BillingRun, BillingSettings, Invoice, ReconciliationRun, SalesLine
from tests.billing import test_admin
from tests.billing.conftest import live_items, reconcile
from tests.billing.test_admin import login, messages_of, staff
from tests.factories import ClientFactory, ContractFactory, TimeEntryFactory

pytestmark = pytest.mark.django_db

WORKBENCH = "/admin/billing/"
RUNS = "/admin/billing/billingrun"
INVOICES = "/admin/billing/invoice"
OCTOBER, SEPTEMBER = date(2026, 10, 1), date(2026, 9, 1)
# The staff users of the admin tests: billing.view, billing.manage, billing.admin.
viewer, manager, billing_admin = test_admin.viewer, test_admin.manager, test_admin.billing_admin
SCOPE = {"period": "2026-10", "prior": ["0", "1"], "next": f"{WORKBENCH}?period=2026-10"}


@pytest.fixture
def acme():
    return ClientFactory(name="Acme AS", currency="NOK")


@pytest.fixture
def month(owner, ticket, mnx, customer, acme):
    """Fjord AS: two hours in October, one in September (pending, prior) and a sales line in
    October; Acme AS: a sales line in October."""
    ContractFactory(client=customer, projects=[mnx], hourly_rate="1000.00")
    october = [TimeEntryFactory(ticket=ticket, user=owner, minutes=60, work_date=date(2026, 10, day),
                                description=f"October work {day}") for day in (5, 6)]
    september = TimeEntryFactory(ticket=ticket, user=owner, minutes=60, work_date=date(2026, 9, 30),
                                 description="September work")
    SalesLine.objects.create(client=customer, date=date(2026, 10, 20), description="Fjord workshop", qty=1,
                             unit_price=Decimal("5000"))
    SalesLine.objects.create(client=acme, date=date(2026, 10, 21), description="Acme licence", qty=2,
                             unit_price=Decimal("750"))
    reconcile()
    return {"october": october, "september": september}


def page_of(browser, **params):
    response = browser.get(WORKBENCH, {"period": "2026-10", **params})
    assert response.status_code == 200, response.content.decode()[:2000]
    return response


def shape(response) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """The grouped list: client → source type → descriptions."""
    return [(group["client"].name, [(source["label"], [short(row["item"].description) for row in source["rows"]])
                                    for source in group["sources"]]) for group in response.context["groups"]]


def short(description: str) -> str:
    """A time item's description without its ticket prefix ("MNX-1 Login fails — Development: ")."""
    return description.rsplit(": ", 1)[-1]


def item_of(entry) -> BillingItem:
    return live_items()[f"ticket_time:{entry.pk}"]


# --- The page ------------------------------------------------------------------------------------------

def test_the_app_index_is_the_workbench_for_billing_readers_only(viewer, superuser, month):
    response = page_of(login(viewer))
    assert "admin/billing/workbench.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert "Billing workbench · 2026-10" in page and "Include prior periods" in page
    # A viewer sees the list but none of the action buttons.
    for button in ("Recalculate billing", "Build draft invoices", "Post invoices", "Remove from run"):
        assert button not in page, button
    assert "Build draft invoices" in page_of(login(superuser)).content.decode()
    assert login(staff(None, "no-billing")).get(WORKBENCH).status_code == 404  # Django's answer: no billing app
    other = login(superuser).get("/admin/tickets/")  # other apps keep Django's index
    assert other.status_code == 200 and "admin/billing/workbench.html" not in [t.name for t in other.templates]


def test_the_period_defaults_to_the_current_month_and_a_bad_one_is_reported(viewer):
    browser = login(viewer)
    response = browser.get(WORKBENCH)
    assert response.context["filters"].period == periods.current_month("Europe/Oslo")
    response = browser.get(WORKBENCH, {"period": "2026-13"})
    assert response.status_code == 200 and response.context["filters"].period == periods.current_month("Europe/Oslo")
    assert any("(invalid_period)" in message for message in messages_of(response))


def test_items_are_grouped_by_client_then_source_with_columns_and_source_links(viewer, month, customer):
    response = page_of(login(viewer))
    assert shape(response) == [
        ("Acme AS", [("Sales line", ["Acme licence"])]),
        ("Fjord AS", [("Sales line", ["Fjord workshop"]),
                      ("Ticket time", ["September work", "October work 5", "October work 6"])]),
    ]
    page = response.content.decode()
    entry = month["october"][0]
    assert f"/admin/tickets/timeentry/{entry.pk}/change/" in page and f"ticket_time:{entry.pk}" in page
    assert "1500.00 NOK" in page and "750.00" in page  # total, unit price
    assert "(prior)" in page  # the September item
    summary = {(row["status"], row["currency"]): (row["count"], row["total"]) for row in response.context["summary"]}
    assert summary == {("pending", "NOK"): (5, Decimal("9500.00"))}


def test_include_prior_periods_is_on_by_default_and_can_be_switched_off(viewer, month):
    browser = login(viewer)
    assert "September work" in page_of(browser).content.decode()
    assert "September work" in page_of(browser, prior=["0", "1"]).content.decode()
    off = page_of(browser, prior="0")
    assert "September work" not in off.content.decode() and off.context["filters"].include_prior is False


def test_client_filter_and_client_summary(viewer, month, acme):
    response = page_of(login(viewer), client=acme.pk)
    assert shape(response) == [("Acme AS", [("Sales line", ["Acme licence"])])]
    assert response.context["client_name"] == "Acme AS"
    assert [(row["status"], row["count"], row["total"]) for row in response.context["summary"]] == [
        ("pending", 1, Decimal("1500.00"))]


def test_lock_badges_and_the_stale_draft_badge(manager, billing_admin, month, customer, acme, owner, ticket):
    fjord = invoicing.run_build(actor=billing_admin, period=OCTOBER, client_ids=[customer.pk])
    acme_run = invoicing.run_build(actor=billing_admin, period=OCTOBER, client_ids=[acme.pk])
    invoicing.run_post(actor=billing_admin, run=acme_run.run)
    browser = login(manager)
    page = page_of(browser).content.decode()
    assert "Locked (Draft)" in page and "Locked (Posted)" in page and "Stale draft" not in page
    assert page.count("Remove from run") == 4  # the Fjord draft's lines, not the posted Acme line

    # New work after the build makes the draft stale: red badge, and the reason in the panel.
    TimeEntryFactory(ticket=ticket, user=owner, minutes=30, work_date=date(2026, 10, 7))
    reconcile()
    draft = Invoice.objects.get(run=fjord.run)
    response = page_of(browser, invoice=draft.pk)
    assert "Stale draft" in response.content.decode()
    (shown,) = response.context["drafts"]
    assert shown["invoice"] == draft and shown["stale"] == ["1 new pending item(s) since the draft was built"]
    selected = response.context["selected"]
    assert (selected["lines"], selected["net"], selected["vat"], selected["gross"]) == (
        4, Decimal("8000.00"), Decimal("2000.00"), Decimal("10000.00"))

    posted = Invoice.objects.get(run=acme_run.run)
    selected = page_of(browser, invoice=posted.pk).context["selected"]
    assert (selected["invoice"].number, selected["gross"], selected["pdf_url"]) == (
        posted.number, Decimal("1875.00"), f"/api/billing/invoices/{posted.pk}/pdf/")


# --- Actions -------------------------------------------------------------------------------------------

def test_recalculate_starts_a_run_for_the_client_and_period_and_shows_its_progress(manager, month, customer):
    browser = login(manager)
    response = browser.post("/admin/billing/reconciliationrun/recalculate/", {**SCOPE, "client": customer.pk})
    run = ReconciliationRun.objects.filter(trigger=RunTrigger.MANUAL).latest("pk")
    assert response.status_code == 302 and response.url == f"/admin/billing/reconciliationrun/{run.pk}/change/"
    assert run.scope == {"client_id": customer.pk, "period": "2026-10"} and run.actor == manager
    page = page_of(browser).content.decode()
    assert f"/admin/billing/reconciliationrun/{run.pk}/change/" in page and "<progress" in page


def test_a_refused_recalculation_comes_back_to_the_workbench_with_its_code(manager, month):
    BillingSettings.objects.update_or_create(pk=1, defaults={"manual_recalculation": False})
    response = login(manager).post("/admin/billing/reconciliationrun/recalculate/", SCOPE)
    assert response.status_code == 302 and response.url == SCOPE["next"]
    assert any("(manual_recalculation_disabled)" in message for message in messages_of(response))


def test_build_dry_run_previews_then_builds_on_confirmation(manager, month, customer):
    browser = login(manager)
    preview = browser.post(f"{RUNS}/build/", {**SCOPE, "dry_run": "1"})
    assert preview.status_code == 200
    assert [row[:3] for row in preview.context["rows"]] == [["Acme AS", "NOK", 1], ["Fjord AS", "NOK", 4]]
    assert not BillingRun.objects.exists() and not BillingItem.objects.filter(status=ItemStatus.RESERVED).exists()
    hidden = dict(preview.context["hidden"])
    assert "dry_run" not in hidden and hidden["period"] == "2026-10"

    response = browser.post(f"{RUNS}/build/", {**SCOPE, "confirm": "Build draft invoices"})
    assert response.status_code == 302 and response.url == SCOPE["next"]
    run = BillingRun.objects.get()
    assert f"{run}: 2 draft invoice(s), 5 item(s) reserved." in messages_of(response)
    assert (run.created_by, run.period_month, run.include_prior_periods) == (manager, OCTOBER, True)
    assert BillingItem.objects.filter(status=ItemStatus.RESERVED).count() == 5

    # The same again: every client is held by the open run; the refusal carries its code.
    again = browser.post(f"{RUNS}/build/", SCOPE)
    assert any("(already_in_open_run)" in message for message in messages_of(again))


def test_build_for_one_client_without_prior_periods(manager, month, customer):
    response = login(manager).post(f"{RUNS}/build/", {**SCOPE, "client": customer.pk, "prior": "0"})
    assert response.status_code == 302
    run = BillingRun.objects.get()
    assert (run.include_prior_periods, run.client_ids) == (False, [customer.pk])
    draft = Invoice.objects.get(run=run)
    assert sorted(short(text) for text in draft.items.values_list("description", flat=True)) == [
        "Fjord workshop", "October work 5", "October work 6"]
    assert item_of(month["september"]).status == ItemStatus.PENDING


def test_build_with_a_malformed_period_is_refused(manager, month):
    response = login(manager).post(f"{RUNS}/build/", {**SCOPE, "period": "2026-13"})
    assert response.status_code == 302
    assert any("(invalid_period)" in message for message in messages_of(response))
    assert not BillingRun.objects.exists()


def test_remove_from_run_puts_the_line_back_to_pending(manager, month):
    run = invoicing.run_build(actor=manager, period=OCTOBER).run
    line = item_of(month["october"][0])
    browser = login(manager)
    response = browser.post(f"{INVOICES}/{line.invoice_id}/remove/{line.pk}/", {"next": SCOPE["next"]})
    assert response.status_code == 302 and response.url == SCOPE["next"]
    line.refresh_from_db()
    assert (line.status, line.invoice, line.run) == (ItemStatus.PENDING, None, None)
    assert any(line.source_key in message for message in messages_of(response))
    assert BillingLog.objects.filter(action=LogAction.REMOVE, actor=manager).exists()
    # A line that is not on that invoice: 404, nothing changes.
    other = Invoice.objects.filter(run=run).exclude(pk=item_of(month["october"][1]).invoice_id).first()
    assert browser.post(f"{INVOICES}/{other.pk}/remove/{item_of(month['october'][1]).pk}/").status_code == 404


def test_refresh_rebuilds_a_stale_draft(manager, month, customer, owner, ticket):
    run = invoicing.run_build(actor=manager, period=OCTOBER, client_ids=[customer.pk]).run
    draft = Invoice.objects.get(run=run)
    TimeEntryFactory(ticket=ticket, user=owner, minutes=30, work_date=date(2026, 10, 7))
    reconcile()
    assert invoicing.stale_reasons(draft)
    response = login(manager).post(f"{INVOICES}/{draft.pk}/refresh/", {"next": SCOPE["next"]})
    assert response.status_code == 302
    assert f"Refreshed {draft.label}: 5 line(s)." in messages_of(response)
    draft.refresh_from_db()
    assert invoicing.stale_reasons(draft) == [] and draft.items.count() == 5


def test_post_invoices_asks_first_then_posts_the_open_runs_of_the_period(billing_admin, month):
    invoicing.run_build(actor=billing_admin, period=OCTOBER)
    browser = login(billing_admin)
    confirm = browser.post(f"{RUNS}/post-period/", SCOPE)
    assert confirm.status_code == 200 and [row[1] for row in confirm.context["rows"]] == ["Acme AS", "Fjord AS"]
    assert not Invoice.objects.filter(status=Invoice.Status.POSTED).exists()

    response = browser.post(f"{RUNS}/post-period/", {**SCOPE, "confirm": "Post 2 invoice(s)"})
    assert response.status_code == 302 and response.url == SCOPE["next"]
    assert "Posted 2 invoice(s): 2026-0001, 2026-0002." in messages_of(response)
    assert BillingRun.objects.get().status == BillingRun.Status.POSTED
    assert set(BillingItem.objects.filter(invoice__isnull=False).values_list("status", flat=True)) == {"invoiced"}

    nothing = browser.post(f"{RUNS}/post-period/", SCOPE)
    assert nothing.status_code == 302 and any("(nothing_to_post)" in m for m in messages_of(nothing))


def test_post_invoices_with_a_client_filter_posts_only_that_clients_drafts(billing_admin, month, acme):
    run = invoicing.run_build(actor=billing_admin, period=OCTOBER).run
    response = login(billing_admin).post(f"{RUNS}/post-period/", {**SCOPE, "client": acme.pk, "confirm": "yes"})
    assert response.status_code == 302
    assert dict(Invoice.objects.filter(run=run).values_list("client__name", "status")) == {
        "Acme AS": "posted", "Fjord AS": "draft"}
    run.refresh_from_db()
    assert run.status == BillingRun.Status.OPEN


# --- Permissions ---------------------------------------------------------------------------------------

def test_viewers_cannot_act_and_managers_cannot_post(viewer, manager, billing_admin, month):
    run = invoicing.run_build(actor=billing_admin, period=OCTOBER).run
    line = item_of(month["october"][0])
    draft = line.invoice
    actions = [f"{RUNS}/build/", f"{RUNS}/post-period/", f"{RUNS}/{run.pk}/post/", f"{INVOICES}/{draft.pk}/refresh/",
               f"{INVOICES}/{draft.pk}/remove/{line.pk}/", f"{INVOICES}/{draft.pk}/post/",
               "/admin/billing/reconciliationrun/recalculate/"]
    browser = login(viewer)
    for url in actions:
        assert browser.post(url, {**SCOPE, "confirm": "yes"}).status_code == 403, url
    admin_only = [f"{RUNS}/post-period/", f"{RUNS}/{run.pk}/post/", f"{INVOICES}/{draft.pk}/post/"]
    for url in admin_only:
        assert login(manager).post(url, {**SCOPE, "confirm": "yes"}).status_code == 403, url
    # Actions are POST only.
    for url in actions[:-1]:
        assert login(billing_admin).get(url).status_code == 405, url
    line.refresh_from_db()
    assert line.status == ItemStatus.RESERVED and not Invoice.objects.filter(status="posted").exists()
    assert not BillingRun.objects.exclude(pk=run.pk).exists()


def test_actions_need_the_csrf_token(billing_admin, month):
    from django.test import Client as BrowserClient

    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(billing_admin)
    assert browser.post(f"{RUNS}/build/", SCOPE).status_code == 403
    assert not BillingRun.objects.exists()


# --- Size ----------------------------------------------------------------------------------------------

def _many_items(count: int, clients) -> None:
    period = periods.period_of(OCTOBER, "Europe/Oslo")
    BillingItem.objects.bulk_create([
        BillingItem(source_key=f"sales_order:{n}", source_type=SourceType.SALES_ORDER, source_id=n,
                    source_date=OCTOBER + timedelta(days=n % 28), client=clients[n % len(clients)],
                    description=f"Line {n:05d}", qty=Decimal("1"), unit_price=Decimal("10"), total=Decimal("10.00"),
                    currency="NOK", vat_rate=Decimal("0.25"), period_month=OCTOBER, period_start=period.start,
                    period_end=period.end) for n in range(count)], batch_size=2000)


def _queries(browser, **params) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = page_of(browser, **params)
    return len(captured), response


def test_ten_thousand_items_are_paginated_grouped_per_page_with_constant_queries(
        viewer, django_assert_max_num_queries):
    clients = [ClientFactory(name=f"Client {n:02d}") for n in range(7)]
    browser = login(viewer)
    _many_items(20, clients)
    small, _ = _queries(browser)
    BillingItem.objects.all().delete()
    _many_items(10_000, clients)

    with django_assert_max_num_queries(small):
        first = page_of(browser)
    assert first.context["page"].paginator.count == 10_000
    assert sum(len(source["rows"]) for group in first.context["groups"] for source in group["sources"]) == (
        WORKBENCH_PAGE_SIZE)
    assert [group["client"].name for group in first.context["groups"]] == ["Client 00"]
    last_number = first.context["page"].paginator.num_pages
    assert last_number == 10_000 // WORKBENCH_PAGE_SIZE
    middle, response = _queries(browser, page=25)
    last, final = _queries(browser, page=last_number)
    assert middle == last == small
    names = [group["client"].name for group in response.context["groups"]]
    assert names == sorted(names) and len(set(names)) == len(names)  # each client once per page
    assert final.context["groups"][-1]["client"].name == "Client 06"


def test_the_stale_check_runs_only_for_the_drafts_shown(manager, month, monkeypatch):
    clients = [ClientFactory(name=f"Extra {n:02d}") for n in range(DRAFTS_SHOWN + 2)]
    for client in clients:
        SalesLine.objects.create(client=client, date=date(2026, 10, 3), description="Extra", qty=1,
                                 unit_price=Decimal("100"))
    reconcile()
    invoicing.run_build(actor=manager, period=OCTOBER)
    checked = []
    original = invoicing.stale_reasons
    monkeypatch.setattr(invoicing, "stale_reasons", lambda invoice: checked.append(invoice.pk) or original(invoice))
    browser = login(manager)
    response = page_of(browser)
    assert len(response.context["drafts"]) == len(checked) == DRAFTS_SHOWN
    assert response.context["drafts_total"] == len(clients) + 2
    assert "all drafts of 2026-10" in response.content.decode()
    listing = browser.get(response.context["drafts_url"])
    assert listing.status_code == 200 and listing.context["cl"].result_count == len(clients) + 2


# --- Run and invoice screens ---------------------------------------------------------------------------

def test_run_list_and_page_and_deleting_an_open_run_through_the_service(manager, billing_admin, month):
    run = invoicing.run_build(actor=manager, period=OCTOBER).run
    browser = login(manager)
    listing = browser.get(f"{RUNS}/")
    row = listing.context["cl"].result_list[0]
    assert (row.invoice_count, row.draft_count) == (2, 2) and "2026-10" in listing.content.decode()
    page = browser.get(f"{RUNS}/{run.pk}/change/").content.decode()
    assert "Acme AS" in page and "Fjord AS" in page and "Post run" not in page  # posting needs billing.admin

    confirm = browser.get(f"{RUNS}/{run.pk}/delete/")
    assert confirm.status_code == 200 and "Items back to pending: 5" in confirm.content.decode()
    response = browser.post(f"{RUNS}/{run.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not BillingRun.objects.exists() and not Invoice.objects.exists()
    assert set(BillingItem.objects.filter(status__in=["pending", "reserved"]).values_list("status", flat=True)) == {
        "pending"}
    assert BillingLog.objects.filter(action=LogAction.DELETE_RUN, actor=manager).exists()


def test_a_posted_run_cannot_be_deleted_and_an_open_one_is_posted_from_its_page(manager, billing_admin, month):
    run = invoicing.run_build(actor=manager, period=OCTOBER).run
    browser = login(billing_admin)
    assert "Post run" in browser.get(f"{RUNS}/{run.pk}/change/").content.decode()
    assert browser.post(f"{RUNS}/{run.pk}/post/").status_code == 200  # the confirmation
    response = browser.post(f"{RUNS}/{run.pk}/post/", {"confirm": "yes"})
    assert response.url == f"{RUNS}/{run.pk}/change/"
    run.refresh_from_db()
    assert run.status == BillingRun.Status.POSTED
    assert browser.post(f"{RUNS}/{run.pk}/delete/", {"post": "yes"}).status_code == 403
    response = browser.post(f"{RUNS}/", {"action": "delete_selected_through_services", "_selected_action": [run.pk],
                                         "index": 0})
    assert any("(run_not_open)" in message for message in messages_of(response))
    assert BillingRun.objects.filter(pk=run.pk).exists()


def test_invoice_page_is_read_only_with_lines_stale_badge_and_post(billing_admin, viewer, month, customer, owner,
                                                                  ticket):
    run = invoicing.run_build(actor=billing_admin, period=OCTOBER, client_ids=[customer.pk]).run
    draft = Invoice.objects.get(run=run)
    TimeEntryFactory(ticket=ticket, user=owner, minutes=30, work_date=date(2026, 10, 8))
    reconcile()
    page = login(viewer).get(f"{INVOICES}/{draft.pk}/change/").content.decode()
    assert "Stale draft" in page and "October work 5" in page and 'name="_save"' not in page
    assert "/refresh/" not in page and "/post/" not in page  # a viewer gets no buttons
    assert "/refresh/" in login(billing_admin).get(f"{INVOICES}/{draft.pk}/change/").content.decode()

    browser = login(billing_admin)
    assert browser.post(f"{INVOICES}/{draft.pk}/post/").status_code == 200
    response = browser.post(f"{INVOICES}/{draft.pk}/post/", {"confirm": "Post"})
    assert response.url == f"{INVOICES}/{draft.pk}/change/"
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.POSTED and draft.number == "2026-0001"
    page = browser.get(f"{INVOICES}/{draft.pk}/change/").content.decode()
    assert "Stale draft" not in page and "Credit all lines" in page and f"/api/billing/invoices/{draft.pk}/pdf/" in page
    assert browser.post(f"{INVOICES}/{draft.pk}/post/", {"confirm": "Post"}).status_code == 302
    assert any("(invoice_not_draft)" in message for message in messages_of(
        browser.post(f"{INVOICES}/{draft.pk}/post/", {"confirm": "Post"})))


def test_credit_all_lines_makes_a_credit_note(billing_admin, manager, month, acme,
                                              django_capture_on_commit_callbacks):
    run = invoicing.run_build(actor=billing_admin, period=OCTOBER, client_ids=[acme.pk]).run
    (posted,) = invoicing.run_post(actor=billing_admin, run=run)
    assert login(manager).post(f"{INVOICES}/{posted.pk}/credit/", {"confirm": "yes"}).status_code == 403
    browser = login(billing_admin)
    assert browser.post(f"{INVOICES}/{posted.pk}/credit/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(f"{INVOICES}/{posted.pk}/credit/", {"confirm": "yes"})
    note = Invoice.objects.get(kind=Invoice.Kind.CREDIT_NOTE)
    assert f"Credit note {note.number} for {posted.number}: net -1500.00 NOK." in messages_of(response)
    assert set(posted.items.values_list("status", flat=True)) == {ItemStatus.CREDITED}
    page = browser.get(f"{INVOICES}/{note.pk}/change/").content.decode()
    assert "Credit: Acme licence" in page and "Credit all lines" not in page
    # The credit line's source link leads to the original item.
    assert f"/admin/billing/billingitem/{posted.items.get().pk}/change/" in page


def test_invoice_list_actions_post_refresh_and_credit(billing_admin, manager, month):
    run = invoicing.run_build(actor=billing_admin, period=OCTOBER).run
    drafts = list(Invoice.objects.filter(run=run).order_by("pk"))
    selection = {"_selected_action": [draft.pk for draft in drafts], "index": 0}
    browser = login(manager)
    listing = browser.get(f"{INVOICES}/")
    names = [name for name, _label in listing.context["action_form"].fields["action"].choices if name]
    assert names == ["refresh_selected"]
    response = browser.post(f"{INVOICES}/", {**selection, "action": "refresh_selected"})
    assert response.status_code == 302 and any("Refreshed" in message for message in messages_of(response))

    browser = login(billing_admin)
    confirm = browser.post(f"{INVOICES}/", {**selection, "action": "post_selected"})
    assert confirm.status_code == 200 and not Invoice.objects.filter(status="posted").exists()
    response = browser.post(f"{INVOICES}/", {**dict(confirm.context["hidden"]), "_selected_action": selection[
        "_selected_action"], "confirm": "Post"})
    assert response.status_code == 302
    assert "Posted 2 invoice(s): 2026-0001, 2026-0002." in messages_of(response)
    response = browser.post(f"{INVOICES}/", {**selection, "action": "credit_selected", "confirm": "yes"})
    assert Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).count() == 2


def test_debit_items_link_to_the_original_item(billing_admin, month, acme):
    run = invoicing.run_build(actor=billing_admin, period=OCTOBER, client_ids=[acme.pk]).run
    (posted,) = invoicing.run_post(actor=billing_admin, run=run)
    original = posted.items.get()
    invoicing.invoice_debit(actor=billing_admin, invoice=posted, item=original, qty=Decimal("1"),
                            unit_price=Decimal("100"), description="Extra licence")
    browser = login(billing_admin)
    assert f"/admin/billing/billingitem/{original.pk}/change/" in browser.get(
        "/admin/billing/billingitem/").content.decode()
    page = page_of(browser, client=acme.pk).content.decode()
    assert "Extra licence" in page and "Locked (Posted)" in page
