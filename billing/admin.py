"""Admin screens for billing (SPEC §4). Billing is global, not per project: reading needs
billing.view, changing clients, contracts and sales lines, voiding and recalculating need
billing.manage, the settings need billing.admin (`billing_allows`, each level including the
lower ones). Every write goes through billing.services, so the contract overlap check, the billing
lock and reconciliation apply as everywhere else; a refusal becomes an error message and nothing
is saved. Billing items, reconciliation runs, unmatched sources and the log are read-only records.

The app's index, /admin/billing/, is the billing workbench for whoever may read billing: a month's
items grouped by client and source, its draft invoices with their stale check, a summary panel,
and the buttons Recalculate billing, Build draft invoices (with a dry run) and Post invoices.
Runs and invoices have their own read-only screens whose buttons call billing.invoicing. Every
button is a POST that needs the billing level of its service (403 otherwise).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import groupby
from operator import attrgetter
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme

from core.admin import ServiceAdmin
from core.errors import Conflict, InvalidInput, ServiceError
from tickets.models import Project

from . import guards, invoicing, periods, services
from .choices import ItemStatus, RunStatus, RunTrigger, SourceType
from .models import (
    DEFAULT_TIME_ZONE,
    BillingItem,
    BillingLog,
    BillingRun,
    BillingSettings,
    Client,
    Contract,
    ContractRate,
    Invoice,
    ReconciliationRequest,
    ReconciliationRun,
    SalesLine,
    UnmatchedSource,
)
from .money import money
from .querysets import billing_allows
from .reconciliation import Scope
from .selectors import MoneyTotals, totals_by_currency

LOCK_BADGES = {ItemStatus.RESERVED: ("Locked (Draft)", "amber"), ItemStatus.INVOICED: ("Locked (Posted)", "blue")}
# Badge tones: classes of static/css/admin.css (the CSP allows no style="" attributes).
STATUS_COLOURS = {ItemStatus.PENDING: "green", ItemStatus.VOID: "grey", ItemStatus.SUPERSEDED: "grey",
                  ItemStatus.CREDITED: "purple"}
# The admin page of the record behind a source id, per source type.
SOURCE_ADMIN = {
    SourceType.TICKET_TIME: "admin:tickets_timeentry_change",
    SourceType.TIMEBANK: "admin:tickets_timeentry_change",
    SourceType.EXPENSE: "admin:tickets_expense_change",
    SourceType.CONTRACT_PERIOD: "admin:billing_contract_change",
    SourceType.SALES_ORDER: "admin:billing_salesline_change",
    SourceType.CREDIT: "admin:billing_billingitem_change",  # the credited original
    SourceType.DEBIT: "admin:billing_billingitem_change",  # the original it adjusts
}
UNMATCHED_SHOWN = 100
REFRESH_SECONDS = 2


def _badge(label: str, tone: str):
    return format_html('<span class="billing-badge billing-badge-{}">{}</span>', tone, label)


def status_badge(item: BillingItem):
    return status_badge_of(item.status)


def status_badge_of(status: str):
    label, colour = LOCK_BADGES.get(status, (ItemStatus(status).label, STATUS_COLOURS.get(status)))
    return _badge(label, colour or "grey")


def refusal(exc: ServiceError, label: str = "") -> str:
    """A service's refusal as an admin message: its text and its code."""
    return f"{label + ': ' if label else ''}{exc.message} ({exc.code})"


def source_link(source_type: str, source_id: int, label: str):
    return format_html('<a href="{}">{}</a>', reverse(SOURCE_ADMIN[source_type], args=[source_id]), label)


def item_link(item: BillingItem | None):
    if item is None:
        return "-"
    return format_html('<a href="{}">{}</a> {}', reverse("admin:billing_billingitem_change", args=[item.pk]),
                       f"#{item.pk} {item.source_key}", status_badge(item))


def run_url(run: ReconciliationRun) -> str:
    return reverse("admin:billing_reconciliationrun_change", args=[run.pk])


def run_progress(run: ReconciliationRun):
    if run.status == RunStatus.QUEUED:
        return "Waiting for a worker"
    return format_html('<progress value="{}" max="{}"></progress> {} / {} clients', run.processed,
                       max(run.total, 1), run.processed, run.total)


# --- Permissions ----------------------------------------------------------------------------------

class BillingAdmin(ServiceAdmin):
    """Staff with billing.view read; `write_action` (a billing_allows action, None: nobody)
    adds, changes and deletes. Django's per-model permissions play no part."""

    write_action: str | None = "manage"

    def has_module_permission(self, request) -> bool:
        return super().has_module_permission(request) and billing_allows(request.user, "read")

    def may(self, request, action: str | None) -> bool:
        return action is not None and self.has_module_permission(request) and billing_allows(request.user, action)

    def has_add_permission(self, request) -> bool:
        return self.may(request, self.write_action)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.may(request, self.write_action)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.may(request, self.write_action)

    def has_manage_permission(self, request) -> bool:
        """For admin actions declared with permissions=["manage"]."""
        return self.may(request, "manage")

    def has_admin_permission(self, request) -> bool:
        """For admin actions declared with permissions=["admin"] (billing.admin)."""
        return self.may(request, "admin")

    def apply_each(self, request, objects, call, done, label=str) -> list:
        """`call` on each object; a refusal is an error message naming the object, and `done`
        (the list of what succeeded → text) the success message. Returns what succeeded."""
        results = []
        for obj in objects:
            try:
                results.append(call(obj))
            except ServiceError as exc:
                self.message_user(request, refusal(exc, label(obj)), level=messages.ERROR)
        if results:
            self.message_user(request, done(results), level=messages.SUCCESS)
        return results

    @admin.action(description="Delete selected (each through its rules)")
    def delete_selected_through_services(self, request, queryset):
        """As ServiceAdmin's, with each refusal's code in its message."""
        self.apply_each(request, queryset, lambda obj: self.delete_model(request, obj),
                        lambda done: f"Deleted {len(done)} object(s).")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if billing_allows(request.user, "read") else queryset.none()


class RecordAdmin(BillingAdmin):
    """A record billing writes itself: shown, never added, changed or deleted here."""

    write_action = None
    actions = []


# --- Recalculation --------------------------------------------------------------------------------

def start_recalculations(modeladmin, request, scopes: list[tuple[str, dict]]):
    """Queue one manual recalculation per (label, resolve_scope arguments); with one started,
    go to its run's page, which follows the progress."""
    runs = []
    for label, arguments in scopes:
        try:
            runs.append(services.recalculation_request(actor=request.user,
                                                       scope=services.resolve_scope(**arguments)))
        except ServiceError as exc:
            modeladmin.message_user(request, refusal(exc, label), level=messages.ERROR)
            if exc.code == "manual_recalculation_disabled":
                break  # the same answer for every other scope
    if not runs:
        return None
    if len(runs) == 1:
        modeladmin.message_user(request, f"Recalculation started: {runs[0]}.", level=messages.SUCCESS)
        return HttpResponseRedirect(run_url(runs[0]))
    links = format_html_join(", ", '<a href="{}">{}</a>', ((run_url(run), f"run {run.pk}") for run in runs))
    modeladmin.message_user(request, format_html("Started {} recalculations: {}.", len(runs), links),
                            level=messages.SUCCESS)
    return HttpResponseRedirect(reverse("admin:billing_reconciliationrun_changelist"))


@admin.action(description="Recalculate billing", permissions=["manage"])
def recalculate_selected(modeladmin, request, queryset):
    return start_recalculations(modeladmin, request, [(str(obj), modeladmin.scope_of(obj)) for obj in queryset])


class RecalculateForm(forms.Form):
    client = forms.ModelChoiceField(queryset=Client.objects.all(), required=False, help_text="Empty: every client.")
    contract = forms.ModelChoiceField(queryset=Contract.objects.select_related("client"), required=False,
                                      help_text="Only the clients of this contract.")
    period = forms.CharField(required=False, max_length=7, label="Period (YYYY-MM)",
                             help_text="Empty: every month.")

    def clean_period(self):
        value = self.cleaned_data["period"].strip()
        if not value:
            return None
        try:
            return periods.parse_period(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_period") from None

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                services.resolve_scope(**self.scope_arguments())
            except ServiceError as exc:
                raise ValidationError(exc.message, code=exc.code) from None
        return data

    def scope_arguments(self) -> dict:
        data = self.cleaned_data
        return {"client_id": data["client"].pk if data["client"] else None,
                "contract_id": data["contract"].pk if data["contract"] else None, "period": data["period"]}


# --- Clients, contracts, sales lines ---------------------------------------------------------------

@admin.register(Client)
class ClientAdmin(BillingAdmin):
    list_display = ["name", "org_number", "currency", "vat_rate", "time_zone", "is_active"]
    list_filter = ["is_active", "currency"]
    search_fields = ["name", "org_number"]
    fields = ["name", "org_number", "currency", "vat_rate", "time_zone", "is_active"]
    actions = [*ServiceAdmin.actions, recalculate_selected]

    def scope_of(self, client) -> dict:
        return {"client_id": client.pk}

    def save_model(self, request, obj, form, change):
        if change:
            services.client_update(actor=request.user, client=obj, changes=self.changes_from(form))
        else:
            obj.pk = services.client_create(actor=request.user, **{f: form.cleaned_data[f] for f in self.fields}).pk

    def delete_model(self, request, obj):
        services.client_delete(actor=request.user, client=obj)


class BillingInline(admin.TabularInline):
    """Rows shown with their parent to billing readers; `write_action` (None: nobody) edits them."""

    write_action: str | None = "manage"
    extra = 0

    def may_write(self, request) -> bool:
        return self.write_action is not None and billing_allows(request.user, self.write_action)

    def has_view_permission(self, request, obj=None) -> bool:
        return billing_allows(request.user, "read")

    def has_add_permission(self, request, obj=None) -> bool:
        return self.may_write(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.may_write(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.may_write(request)


class ContractRateInline(BillingInline):
    """The rate card; saved with the contract by the contract service, never on its own."""

    model = ContractRate
    fields = ["activity", "hourly_rate"]
    verbose_name = "rate card line"
    verbose_name_plural = "rate card (hourly rate per activity; others use the contract's hourly rate)"


CONTRACT_FIELDS = ["client", "name", "valid_from", "valid_to", "hourly_rate", "monthly_fee", "timebank_hours",
                   "overage_rate", "rounding_minutes"]


class ContractAdminForm(forms.ModelForm):
    # Projects are linked through ContractProject, which the service writes with the overlap check.
    project_choices = forms.ModelMultipleChoiceField(
        queryset=Project.objects.order_by("key"), required=False, label="Projects",
        widget=FilteredSelectMultiple("projects", is_stacked=False),
        help_text="Time and expenses of these projects are billed under this contract while it is valid.")

    class Meta:
        model = Contract
        fields = CONTRACT_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.setdefault("project_choices",
                                    list(self.instance.project_links.values_list("project_id", flat=True)))


@admin.register(Contract)
class ContractAdmin(BillingAdmin):
    form = ContractAdminForm
    list_display = ["name", "client", "valid_from", "valid_to", "hourly_rate", "monthly_fee", "timebank_hours",
                    "projects_display"]
    list_filter = ["client"]
    search_fields = ["name", "client__name", "project_links__project__key"]
    list_select_related = ["client"]
    inlines = [ContractRateInline]
    actions = [*ServiceAdmin.actions, recalculate_selected]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("project_links__project")

    def get_fields(self, request, obj=None):
        projects = "project_choices" if self.has_change_permission(request, obj) else "projects_display"
        return [*CONTRACT_FIELDS[:4], projects, *CONTRACT_FIELDS[4:]]

    @admin.display(description="Projects")
    def projects_display(self, contract):
        return ", ".join(sorted(link.project.key for link in contract.project_links.all())) or "-"

    def scope_of(self, contract) -> dict:
        return {"contract_id": contract.pk}

    def save_model(self, request, obj, form, change):
        pass  # the contract, its projects and its rate card are saved together in save_related

    def save_related(self, request, form, formsets, change):
        rates = {}
        for formset in formsets:
            for row in formset.forms:
                data = row.cleaned_data
                if data.get("activity") and not data.get("DELETE"):
                    rates[data["activity"]] = data["hourly_rate"]
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        projects = list(form.cleaned_data["project_choices"])
        if change:
            changes = {name: value for name, value in self.changes_from(form).items() if name in CONTRACT_FIELDS}
            services.contract_update(actor=request.user, contract=form.instance, changes=changes, projects=projects,
                                     rates=rates)
        else:
            fields = {name: form.cleaned_data[name] for name in CONTRACT_FIELDS}
            form.instance.pk = services.contract_create(actor=request.user, projects=projects, rates=rates,
                                                        **fields).pk

    def delete_model(self, request, obj):
        services.contract_delete(actor=request.user, contract=obj)


@admin.register(SalesLine)
class SalesLineAdmin(BillingAdmin):
    list_display = ["date", "client", "description", "qty", "unit_price", "contract", "project", "created_by"]
    list_filter = ["client"]
    search_fields = ["description", "client__name"]
    list_select_related = ["client", "contract", "project", "created_by"]
    date_hierarchy = "date"
    fields = ["client", "contract", "project", "date", "description", "qty", "unit_price"]

    def get_fields(self, request, obj=None):
        return [*self.fields, "billing_state"] if obj else self.fields

    def get_readonly_fields(self, request, obj=None):
        return ["billing_state"] if obj else []

    @admin.display(description="Billing")
    def billing_state(self, line):
        item = guards.locking_item("sales_line", line.pk)
        if item is None:
            return "Not on an invoice: can be changed."
        return item_link(item)

    def save_model(self, request, obj, form, change):
        if change:
            services.sales_line_update(actor=request.user, line=obj, changes=self.changes_from(form))
        else:
            obj.pk = services.sales_line_create(actor=request.user,
                                                **{f: form.cleaned_data[f] for f in self.fields}).pk

    def delete_model(self, request, obj):
        services.sales_line_delete(actor=request.user, line=obj)


# --- Billing items --------------------------------------------------------------------------------

class VoidForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Why these items are not billed; kept on each item and in the log.")


@admin.register(BillingItem)
class BillingItemAdmin(RecordAdmin):
    list_display = ["source_ref", "client", "description", "qty", "unit_price", "total", "currency", "status_display",
                    "period_month"]
    list_filter = ["status", "source_type", "client", "period_month"]
    search_fields = ["description", "source_key"]
    list_select_related = ["client"]
    actions = ["void_selected", "restore_selected"]
    fieldsets = [
        (None, {"fields": ["source_ref", "status_display", "void_reason", "client", "contract", "project", "ticket",
                           "description", "qty", "unit_price", "total", "currency", "vat_rate"]}),
        ("Period", {"fields": ["source_date", "period_month", "period_start", "period_end"]}),
        ("History", {"fields": ["supersedes_link", "superseded_by_link", "original_item", "invoice", "run",
                                "reconciliation_run", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("supersedes", "superseded_by")

    @admin.display(description="Source", ordering="source_key")
    def source_ref(self, item):
        return source_link(item.source_type, item.source_id, item.source_key)

    @admin.display(description="Status", ordering="status")
    def status_display(self, item):
        return status_badge(item)

    @admin.display(description="Supersedes")
    def supersedes_link(self, item):
        return item_link(item.supersedes)

    @admin.display(description="Superseded by")
    def superseded_by_link(self, item):
        return item_link(getattr(item, "superseded_by", None))

    def _each(self, request, queryset, done_label: str, call) -> None:
        self.apply_each(request, queryset, call, lambda done: f"{done_label} {len(done)} item(s).",
                        label=attrgetter("source_key"))

    @admin.action(description="Void selected items", permissions=["manage"])
    def void_selected(self, request, queryset):
        form = VoidForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            self._each(request, queryset, "Voided",
                       lambda item: services.item_void(actor=request.user, item=item, reason=reason))
            return None
        return TemplateResponse(request, "admin/billing/billingitem/void_selected.html", {
            **self.admin_site.each_context(request), "title": "Void billing items", "opts": self.opts,
            "items": queryset, "form": form, "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        })

    @admin.action(description="Restore selected items", permissions=["manage"])
    def restore_selected(self, request, queryset):
        self._each(request, queryset, "Restored", lambda item: services.item_restore(actor=request.user, item=item))


# --- Reconciliation runs, unmatched sources, log ---------------------------------------------------

@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(RecordAdmin):
    list_display = ["__str__", "scope_display", "progress_display", "created", "superseded", "unchanged", "unmatched",
                    "skipped_locked", "duration_display", "actor", "created_at"]
    list_filter = ["status", "trigger"]
    list_select_related = ["actor"]
    fieldsets = [
        (None, {"fields": ["trigger", "status", "actor", "scope_display", "task_id", "error"]}),
        ("Progress", {"fields": ["progress_display", "items_processed", "created_at", "started_at", "finished_at",
                                 "duration_display"]}),
        ("Counts", {"fields": ["created", "superseded", "unchanged", "unmatched", "skipped_locked"]}),
        ("Unmatched sources", {"fields": ["unmatched_table"]}),
    ]

    @admin.display(description="Scope")
    def scope_display(self, run):
        return Scope.from_dict(run.scope).describe()

    @admin.display(description="Progress")
    def progress_display(self, run):
        return run_progress(run)

    @admin.display(description="Duration")
    def duration_display(self, run):
        return "-" if run.duration_ms is None else f"{run.duration_ms / 1000:.2f} s"

    @admin.display(description="Unmatched sources")
    def unmatched_table(self, run):
        rows = list(run.unmatched_sources.select_related("project", "client")[:UNMATCHED_SHOWN])
        if not rows:
            return "None"
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (source_link(row.source_type, row.source_id, f"{row.source_type}:{row.source_id}"),
             row.get_reason_display(), row.project.key if row.project else "-", row.client or "-",
             row.source_date or "-", row.detail or "") for row in rows))
        all_link = format_html('<a href="{}?run={}">All unmatched sources of this run ({})</a>',
                               reverse("admin:billing_unmatchedsource_changelist"), run.pk,
                               run.unmatched_sources.count())
        return format_html('<table><thead><tr><th>Source</th><th>Reason</th><th>Project</th><th>Client</th>'
                           "<th>Date</th><th>Detail</th></tr></thead><tbody>{}</tbody></table>{}", body, all_link)

    def get_urls(self):
        recalculate = path("recalculate/", self.admin_site.admin_view(self.recalculate_view),
                           name="billing_reconciliationrun_recalculate")
        return [recalculate, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"may_recalculate": self.has_manage_permission(request),
                                                 **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        running = run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
        return super().change_view(request, object_id, form_url, {
            "refresh_seconds": REFRESH_SECONDS if running else None, **(extra_context or {})})

    def recalculate_view(self, request):
        """Recalculate everything, a client, a contract and/or a month, then follow the run."""
        if not self.has_manage_permission(request):
            raise PermissionDenied
        form = RecalculateForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            response = start_recalculations(self, request, [("Recalculation", form.scope_arguments())])
            if response is not None:
                return response
            if request.POST.get("next"):  # sent from the workbench: show the refusal there
                return HttpResponseRedirect(safe_next(request, request.path))
        return TemplateResponse(request, "admin/billing/reconciliationrun/recalculate.html", {
            **self.admin_site.each_context(request), "title": "Recalculate billing", "opts": self.opts,
            "form": form,
        })


@admin.register(UnmatchedSource)
class UnmatchedSourceAdmin(RecordAdmin):
    list_display = ["source", "reason", "project", "client", "source_date", "detail", "run"]
    list_filter = ["reason", "source_type"]
    list_select_related = ["project", "client", "run"]

    @admin.display(description="Source", ordering="source_id")
    def source(self, row):
        return source_link(row.source_type, row.source_id, f"{row.source_type}:{row.source_id}")


@admin.register(ReconciliationRequest)
class ReconciliationRequestAdmin(RecordAdmin):
    """The on-save outbox: requests not yet worked off (normally empty within seconds)."""

    list_display = ["id", "scope", "created_at", "claimed_at", "attempts", "last_error"]


@admin.register(BillingLog)
class BillingLogAdmin(RecordAdmin):
    list_display = ["created_at", "action", "actor", "summary", "item_count", "duration_ms", "reconciliation_run"]
    list_filter = ["action"]
    search_fields = ["summary"]
    list_select_related = ["actor", "reconciliation_run"]


# --- Settings -------------------------------------------------------------------------------------

@admin.register(BillingSettings)
class BillingSettingsAdmin(BillingAdmin):
    """One row; changing it needs billing.admin. Saved through settings_update, which logs it."""

    write_action = "admin"
    list_display = ["__str__", "reconcile_on_save", "manual_recalculation", "default_currency", "default_vat_rate",
                    "default_time_zone", "updated_at"]
    fields = ["reconcile_on_save", "manual_recalculation", "default_currency", "default_vat_rate", "default_time_zone"]
    actions = []

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and not BillingSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        row = BillingSettings.objects.first()
        if row is not None and self.has_view_permission(request):
            return HttpResponseRedirect(reverse("admin:billing_billingsettings_change", args=[row.pk]))
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        changes = {name: form.cleaned_data[name] for name in self.fields} if not change else self.changes_from(form)
        obj.pk = services.settings_update(actor=request.user, changes=changes).pk


# --- Invoicing: shared by the workbench, runs and invoices -----------------------------------------

WORKBENCH_PAGE_SIZE = 200
DRAFTS_SHOWN = 20  # the stale check recomputes a draft's lines: only for the drafts on the page
CONFIRM_ROWS = 100
RECENT_RECALCULATIONS = 3
# What the workbench lists: everything but superseded history.
WORKBENCH_STATUSES = (ItemStatus.PENDING, ItemStatus.RESERVED, ItemStatus.INVOICED, ItemStatus.VOID,
                      ItemStatus.CREDITED)
GROUP_ORDER = ("client__name", "client_id", "source_type", "source_date", "pk")
STALE_COLOUR = "red"
INVOICE_STATUS_COLOURS = {Invoice.Status.DRAFT: "amber", Invoice.Status.POSTED: "blue"}
INVOICE_PDF_URL = "/api/billing/invoices/{pk}/pdf/"
NO_DRAFTS_TO_POST_MESSAGE = "No open run to post for {period}."
NOTHING_TO_POST_MESSAGE = "There are no draft invoices of {what} to post."


def safe_next(request, default: str) -> str:
    """Where to go after an action: the `next` it was sent with, if it stays on this site."""
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return default


def stale_badge(reasons: list[str]):
    return format_html('<span title="{}">{}</span>', "; ".join(reasons), _badge("Stale draft", STALE_COLOUR))


def invoice_badge(invoice: Invoice):
    return _badge(invoice.get_status_display(), INVOICE_STATUS_COLOURS[invoice.status])


def invoice_url(invoice: Invoice) -> str:
    return reverse("admin:billing_invoice_change", args=[invoice.pk])


def plain(value: Decimal, places: int = 0) -> str:
    """A stored decimal without trailing zeros beyond `places`: 2.5000 → 2.5, 1000.0000 → 1000.00."""
    value = value.normalize()
    if places and value == value.quantize(Decimal(1).scaleb(-places)):
        value = value.quantize(Decimal(1).scaleb(-places))
    return f"{value:f}"


INVOICE_HEADERS = ["Invoice", "Client", "Currency", "Lines", "Net"]


def listed_net(invoice: Invoice) -> Decimal:
    """The net of an invoice from with_lines: as posted, or the sum of a draft's lines."""
    return money(invoice.line_total or Decimal(0)) if invoice.net is None else invoice.net


def invoice_totals(invoice: Invoice) -> MoneyTotals:
    """Net, VAT and gross: as posted, or from a draft's current lines."""
    if invoice.status == Invoice.Status.POSTED:
        return MoneyTotals(net=invoice.net, vat=invoice.vat)
    return totals_by_currency(invoice.items.all()).get(invoice.currency) or MoneyTotals()


def invoice_rows(invoices) -> list[list]:
    """Rows of a confirmation table; `invoices` come from with_lines."""
    return [[invoice.label, invoice.client.name, invoice.currency, invoice.line_count, listed_net(invoice)]
            for invoice in invoices[:CONFIRM_ROWS]]


def with_lines(invoices):
    return invoices.select_related("client").annotate(line_count=Count("items"), line_total=Sum("items__total"))


def confirmation(modeladmin, request, *, title: str, intro: str, button: str | None, cancel_url: str,
                 headers=(), rows=(), notes=(), drop=()):
    """The page that asks before an action. It posts back everything it was sent (but `drop`),
    plus confirm, to the same address."""
    hidden = [(name, value) for name in request.POST if name not in ("csrfmiddlewaretoken", "confirm", *drop)
              for value in request.POST.getlist(name)]
    return TemplateResponse(request, "admin/billing/confirm.html", {
        **modeladmin.admin_site.each_context(request), "title": title, "opts": modeladmin.opts, "intro": intro,
        "headers": headers, "rows": rows, "notes": notes, "button": button, "cancel_url": cancel_url,
        "hidden": hidden})


def perform(modeladmin, request, action: str, call, *, default_next: str, ask=None):
    """One button of the invoicing screens: POST only (405), the billing permission `action` (403),
    the page `ask` returns first unless confirmed, then `call`, which returns the success message (or
    None when it wrote its own). A ServiceError becomes an error message with its code."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not modeladmin.may(request, action):
        raise PermissionDenied
    try:
        if ask is not None and "confirm" not in request.POST:
            return ask()
        done = call()
    except ServiceError as exc:
        modeladmin.message_user(request, refusal(exc), level=messages.ERROR)
    else:
        if done:
            modeladmin.message_user(request, done, level=messages.SUCCESS)
    return HttpResponseRedirect(safe_next(request, default_next))


def posted_message(invoices: list[Invoice]) -> str:
    return f"Posted {len(invoices)} invoice(s): {', '.join(invoice.number for invoice in invoices)}."


# --- Workbench filters and reads -----------------------------------------------------------------

def default_period() -> date:
    zone = BillingSettings.objects.values_list("default_time_zone", flat=True).first() or DEFAULT_TIME_ZONE
    return periods.current_month(zone)


def workbench_url() -> str:
    return reverse("admin:app_list", kwargs={"app_label": "billing"})


@dataclass(frozen=True)
class BenchFilters:
    """What the workbench shows and its buttons act on: a month, optionally one client, whether
    pending items of earlier months are included (on by default), optionally one item status."""

    period: date
    client_id: int | None = None
    include_prior: bool = True
    status: str = ""

    @classmethod
    def read(cls, data) -> "BenchFilters":
        """From a GET or POST body; a malformed period is refused (InvalidInput, invalid_period).
        `prior` is sent as a hidden 0 plus a checkbox 1, so absent means the default (on)."""
        raw = (data.get("period") or "").strip()
        try:
            period = periods.parse_period(raw) if raw else default_period()
        except ValueError as exc:
            raise InvalidInput.for_field("period", str(exc), code="invalid_period") from None
        client, prior, status = data.get("client") or "", data.getlist("prior"), data.get("status") or ""
        return cls(period=period, client_id=int(client) if client.isdigit() else None,
                   include_prior=not prior or "1" in prior, status=status if status in WORKBENCH_STATUSES else "")

    @property
    def label(self) -> str:
        return f"{self.period:%Y-%m}"

    @property
    def client_ids(self) -> list[int] | None:
        return [self.client_id] if self.client_id else None

    def params(self, **extra) -> dict:
        params = {"period": self.label, "client": self.client_id, "prior": "1" if self.include_prior else "0",
                  "status": self.status, **extra}
        return {name: value for name, value in params.items() if value not in ("", None)}

    def url(self) -> str:
        return f"{workbench_url()}?{urlencode(self.params())}"

    def items(self, user, *, by_status: bool = True):
        """The month's items (and those on the month's invoices), plus pending items of earlier
        months with include_prior; superseded history is left out."""
        scope = Q(period_month=self.period) | Q(invoice__period_month=self.period)
        if self.include_prior:
            scope |= Q(period_month__lt=self.period, status=ItemStatus.PENDING)
        items = BillingItem.objects.visible_to(user).filter(scope, status__in=WORKBENCH_STATUSES)
        if self.client_id:
            items = items.filter(client_id=self.client_id)
        return items.filter(status=self.status) if by_status and self.status else items

    def drafts(self, user):
        """Draft invoices of the month's open runs."""
        drafts = Invoice.objects.visible_to(user).filter(
            status=Invoice.Status.DRAFT, run__status=BillingRun.Status.OPEN, run__period_month=self.period)
        return drafts.filter(client_id=self.client_id) if self.client_id else drafts


def posted_filters(request) -> BenchFilters:
    return BenchFilters.read(request.POST)


def bench_next(request) -> str:
    """The workbench as the posted filters had it (the form's `next` normally wins)."""
    try:
        return posted_filters(request).url()
    except ServiceError:
        return workbench_url()


def grouped(items, period: date) -> list[dict]:
    """A page of items (in GROUP_ORDER) as client → source type → rows."""
    clients = []
    for _client_id, client_items in groupby(items, key=attrgetter("client_id")):
        client_items = list(client_items)
        clients.append({"client": client_items[0].client, "sources": [
            {"label": SourceType(source_type).label, "rows": [item_row(item, period) for item in rows]}
            for source_type, rows in groupby(client_items, key=attrgetter("source_type"))]})
    return clients


def item_row(item: BillingItem, period: date) -> dict:
    return {"item": item, "qty": plain(item.qty), "unit_price": plain(item.unit_price, 2),
            "badge": status_badge(item), "source": source_link(item.source_type, item.source_id, item.source_key),
            "prior": item.period_month < period, "removable": item.status == ItemStatus.RESERVED}


def status_summary(items) -> list[dict]:
    """Count and total per status and currency: one query."""
    order = {status: n for n, status in enumerate(WORKBENCH_STATUSES)}
    rows = items.order_by().values("status", "currency").annotate(count=Count("pk"), total=Sum("total"))
    return [{**row, "total": money(row["total"]), "badge": status_badge_of(row["status"])}
            for row in sorted(rows, key=lambda row: (order[row["status"]], row["currency"]))]


def invoice_summary(user, invoice_id, drafts: list[dict]) -> dict | None:
    invoice = Invoice.objects.visible_to(user).select_related("client", "run").filter(pk=invoice_id).first()
    if invoice is None:
        return None
    totals = invoice_totals(invoice)
    summary = {"invoice": invoice, "badge": invoice_badge(invoice), "url": invoice_url(invoice),
               "lines": invoice.items.count(), "net": totals.net, "vat": totals.vat, "gross": totals.gross}
    if invoice.status == Invoice.Status.POSTED:
        return {**summary, "stale": [], "pdf_url": INVOICE_PDF_URL.format(pk=invoice.pk)}
    stale = next((shown["stale"] for shown in drafts if shown["invoice"].pk == invoice.pk), None)
    stale = invoicing.stale_reasons(invoice) if stale is None else stale
    return {**summary, "stale": stale, "stale_badge": stale_badge(stale) if stale else None}


def shown_drafts(user, filters: BenchFilters) -> tuple[list[dict], int]:
    """The first DRAFTS_SHOWN drafts of the month with their stale check, and how many there are."""
    drafts = with_lines(filters.drafts(user)).select_related("run").order_by("client__name", "pk")[:DRAFTS_SHOWN]
    shown = []
    for draft in drafts:
        stale = invoicing.stale_reasons(draft)
        shown.append({"invoice": draft, "net": listed_net(draft), "badge": invoice_badge(draft), "stale": stale,
                      "stale_badge": stale_badge(stale) if stale else None})
    return shown, filters.drafts(user).count() if len(shown) == DRAFTS_SHOWN else len(shown)


def drafts_list_url(filters: BenchFilters) -> str:
    """The invoice list filtered to the month's drafts (and client)."""
    params = {"status__exact": Invoice.Status.DRAFT, "period_month": filters.period}
    if filters.client_id:
        params["client__id__exact"] = filters.client_id
    return f"{reverse('admin:billing_invoice_changelist')}?{urlencode(params)}"


def workbench_filters(request) -> BenchFilters:
    try:
        return BenchFilters.read(request.GET)
    except ServiceError as exc:
        messages.error(request, refusal(exc))
        data = request.GET.copy()
        data["period"] = ""
        return BenchFilters.read(data)


def workbench_view(site, request):
    """/admin/billing/ for billing readers. A constant number of queries per page: the items
    are paginated and grouped within the page, the stale check runs for DRAFTS_SHOWN drafts."""
    user = request.user
    filters = workbench_filters(request)
    items = filters.items(user).select_related("client", "invoice").order_by(*GROUP_ORDER)
    page = Paginator(items, WORKBENCH_PAGE_SIZE).get_page(request.GET.get("page"))
    drafts, drafts_total = shown_drafts(user, filters)
    clients = list(Client.objects.visible_to(user).order_by("name").values_list("pk", "name"))
    selected = request.GET.get("invoice") or ""
    recalculations = ReconciliationRun.objects.visible_to(user).filter(trigger=RunTrigger.MANUAL).order_by("-pk")
    open_runs = BillingRun.objects.visible_to(user).filter(status=BillingRun.Status.OPEN, period_month=filters.period)
    app = site.get_app_list(request, "billing")
    return TemplateResponse(request, "admin/billing/workbench.html", {
        **site.each_context(request), "title": f"Billing workbench · {filters.label}", "filters": filters,
        "query": urlencode(filters.params()), "page_query": urlencode(filters.params(invoice=selected)),
        "scope_fields": [(name, value) for name, value in filters.params().items() if name != "status"],
        "next": request.get_full_path(), "clients": clients,
        "client_name": dict(clients).get(filters.client_id, ""),
        "statuses": [(status.value, status.label) for status in WORKBENCH_STATUSES],
        "page": page, "page_range": page.paginator.get_elided_page_range(page.number),
        "groups": grouped(page.object_list, filters.period),
        "drafts": drafts, "drafts_total": drafts_total, "drafts_url": drafts_list_url(filters),
        "open_runs": list(open_runs.order_by("pk")),
        "recalculations": [(run, run_url(run), run_progress(run)) for run in recalculations[:RECENT_RECALCULATIONS]],
        "selected": invoice_summary(user, selected, drafts) if selected.isdigit() else None,
        "summary": status_summary(filters.items(user, by_status=False)),
        "may_manage": billing_allows(user, "manage"), "may_admin": billing_allows(user, "admin"),
        "billing_models": app[0]["models"] if app else [],
    })


def install_workbench(site: admin.AdminSite) -> None:
    """Make /admin/billing/ the workbench for users who may read billing; everyone else keeps
    Django's app index. Done before the site builds its URLs (admin autodiscovery)."""
    default = site.app_index
    if getattr(default, "billing_workbench", False):
        return

    def app_index(request, app_label, extra_context=None):
        if app_label == BillingItem._meta.app_label and billing_allows(request.user, "read"):
            return workbench_view(site, request)
        return default(request, app_label, extra_context)

    app_index.billing_workbench = True
    site.app_index = app_index


install_workbench(admin.site)


# --- Billing runs --------------------------------------------------------------------------------

@admin.register(BillingRun)
class BillingRunAdmin(RecordAdmin):
    """Runs are built from the workbench; an open run can be posted or deleted (its items go back
    to pending), a posted one is a record."""

    list_display = ["__str__", "period_display", "status", "include_prior_periods", "invoice_count", "draft_count",
                    "created_by", "created_at", "posted_at"]
    list_filter = ["status"]
    list_select_related = ["created_by"]
    actions = ["delete_selected_through_services", "post_selected"]
    fields = ["period_display", "status", "include_prior_periods", "clients_display", "created_by", "created_at",
              "posted_at", "invoices_table"]
    change_form_template = "admin/billing/record_change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            invoice_count=Count("invoices"),
            draft_count=Count("invoices", filter=Q(invoices__status=Invoice.Status.DRAFT)))

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.may(request, "manage") and (obj is None or obj.status == BillingRun.Status.OPEN)

    @admin.display(description="Period", ordering="period_month")
    def period_display(self, run):
        return f"{run.period_month:%Y-%m}"

    @admin.display(description="Invoices", ordering="invoice_count")
    def invoice_count(self, run):
        return run.invoice_count

    @admin.display(description="Drafts", ordering="draft_count")
    def draft_count(self, run):
        return run.draft_count

    @admin.display(description="Clients")
    def clients_display(self, run):
        if not run.client_ids:
            return "All active clients"
        return ", ".join(Client.objects.filter(pk__in=run.client_ids).values_list("name", flat=True))

    @admin.display(description="Invoices")
    def invoices_table(self, run):
        invoices = with_lines(run.invoices.order_by("client__name", "pk"))[:CONFIRM_ROWS]
        rows = format_html_join("", '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
                                    "<td>{}</td></tr>", (
            (invoice_url(invoice), invoice.label, invoice.client.name, invoice_badge(invoice), invoice.currency,
             invoice.line_count, listed_net(invoice))
            for invoice in invoices))
        all_link = format_html('<a href="{}?run__id__exact={}">All invoices of this run</a>',
                               reverse("admin:billing_invoice_changelist"), run.pk)
        return format_html("<table><thead><tr><th>Invoice</th><th>Client</th><th>Status</th><th>Currency</th>"
                           "<th>Lines</th><th>Net</th></tr></thead><tbody>{}</tbody></table>{}", rows, all_link)

    def get_deleted_objects(self, objs, request):
        """What deleting an open run does: its drafts go, its items return to pending (the items
        protect nothing here, run_delete releases them first)."""
        runs = list(objs)
        drafts = Invoice.objects.filter(run__in=runs)
        items = BillingItem.objects.filter(run__in=runs).count()
        summary = [f"{run}" for run in runs] + [f"Draft invoice {draft.label}" for draft in drafts[:CONFIRM_ROWS]]
        return summary, {"billing runs": len(runs), "draft invoices": drafts.count(),
                         "items back to pending": items}, set(), []

    def delete_model(self, request, obj):
        released = invoicing.run_delete(actor=request.user, run=obj)
        self.message_user(request, f"{released} item(s) of {obj} are pending again.", level=messages.INFO)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("build/", wrap(self.build_view), name="billing_billingrun_build"),
                path("post-period/", wrap(self.post_period_view), name="billing_billingrun_post_period"),
                path("<path:object_id>/post/", wrap(self.post_view), name="billing_billingrun_post"),
                *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        tools = []
        if run is not None:
            tools.append({"label": "Workbench", "url": f"{workbench_url()}?period={run.period_month:%Y-%m}"})
            if run.status == BillingRun.Status.OPEN and self.may(request, "admin"):
                tools.append({"label": "Post run", "url": reverse("admin:billing_billingrun_post", args=[run.pk]),
                              "post": True})
        return super().change_view(request, object_id, form_url, {"object_actions": tools, **(extra_context or {})})

    def _confirm_posting(self, request, drafts, what: str, cancel_url: str):
        drafts = with_lines(drafts.order_by("client__name", "pk"))
        count = drafts.count()
        if not count:
            raise Conflict(NOTHING_TO_POST_MESSAGE.format(what=what), code="nothing_to_post")
        more = [f"… and {count - CONFIRM_ROWS} more."] if count > CONFIRM_ROWS else []
        return confirmation(self, request, title="Post invoices", cancel_url=cancel_url,
                            intro=f"Post the draft invoices of {what}. Each gets the next number of its series; "
                                  "a posted invoice can no longer change, only be credited. Refresh the drafts "
                                  "the workbench marks Stale draft first.",
                            headers=INVOICE_HEADERS, rows=invoice_rows(drafts), notes=more,
                            button=f"Post {count} invoice(s)")

    def _post_runs(self, request, runs):
        self.apply_each(request, runs, lambda run: invoicing.run_post(actor=request.user, run=run),
                        lambda done: posted_message([invoice for posted in done for invoice in posted]))

    def build_view(self, request):
        """Build draft invoices for the workbench's month and client; with dry_run, a preview that
        builds on confirmation."""

        def build(dry_run: bool = False):
            filters = posted_filters(request)
            return filters, invoicing.run_build(actor=request.user, period=filters.period,
                                                client_ids=filters.client_ids,
                                                include_prior_periods=filters.include_prior, dry_run=dry_run)

        def preview():
            filters, result = build(dry_run=True)
            names = Client.objects.in_bulk([entry["client"] for entry in result.invoices + result.skipped])
            entries = sorted(result.invoices, key=lambda entry: (names[entry["client"]].name, entry["currency"]))
            scope = "earlier months included" if filters.include_prior else "this month only"
            return confirmation(
                self, request, title=f"Build draft invoices for {filters.label}: preview",
                intro=(f"A build ({scope}) would make these draft invoices and reserve their items."
                       if result.invoices else "Nothing to build: no pending items for this scope."),
                headers=["Client", "Currency", "Items", "Net"],
                rows=[[names[entry["client"]].name, entry["currency"], entry["items"], entry["net"]]
                      for entry in entries],
                notes=[entry["detail"] for entry in result.skipped], drop=["dry_run"],
                button="Build draft invoices" if result.invoices else None, cancel_url=filters.url())

        def built():
            _filters, result = build()
            for entry in result.skipped:
                self.message_user(request, entry["detail"], level=messages.WARNING)
            items = sum(entry["items"] for entry in result.invoices)
            return f"{result.run}: {len(result.invoices)} draft invoice(s), {items} item(s) reserved."

        return perform(self, request, "manage", built, default_next=bench_next(request),
                       ask=preview if request.POST.get("dry_run") else None)

    def post_period_view(self, request):
        """Post invoices: every draft of the month's open runs (a run at a time, all or nothing), or
        with a client filter that client's drafts; after a confirmation."""

        def ask():
            filters = posted_filters(request)
            return self._confirm_posting(request, filters.drafts(request.user),
                                         filters.label, filters.url())

        def post():
            filters = posted_filters(request)
            if filters.client_id:
                self.apply_each(request, filters.drafts(request.user).order_by("pk"),
                                lambda draft: invoicing.invoice_post(actor=request.user, invoice=draft),
                                posted_message)
                return
            runs = BillingRun.objects.filter(status=BillingRun.Status.OPEN, period_month=filters.period)
            if not runs.exists():
                raise Conflict(NO_DRAFTS_TO_POST_MESSAGE.format(period=filters.label), code="nothing_to_post")
            self._post_runs(request, runs.order_by("pk"))

        return perform(self, request, "admin", post, default_next=bench_next(request), ask=ask)

    def post_view(self, request, object_id):
        run = self.get_object(request, object_id)
        if run is None:
            raise Http404
        url = reverse("admin:billing_billingrun_change", args=[run.pk])
        return perform(self, request, "admin", lambda: self._post_runs(request, [run]), default_next=url,
                       ask=lambda: self._confirm_posting(request, run.invoices.filter(status=Invoice.Status.DRAFT),
                                                         str(run), url))

    @admin.action(description="Post selected runs", permissions=["admin"])
    def post_selected(self, request, queryset):
        if "confirm" not in request.POST:
            try:
                return self._confirm_posting(request, Invoice.objects.filter(run__in=queryset,
                                                                             status=Invoice.Status.DRAFT),
                                             "the selected runs", request.get_full_path())
            except ServiceError as exc:
                self.message_user(request, refusal(exc), level=messages.ERROR)
                return None
        self._post_runs(request, queryset.order_by("pk"))
        return None


# --- Invoices ------------------------------------------------------------------------------------

class InvoiceLineInline(BillingInline):
    """An invoice's lines, read-only."""

    model = BillingItem
    fk_name = "invoice"
    write_action = None
    fields = ["source_ref", "description", "qty", "unit_price", "total", "vat_rate", "status_display"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True
    verbose_name = "line"

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("source_type", "source_date", "pk")

    @admin.display(description="Source")
    def source_ref(self, item):
        return source_link(item.source_type, item.source_id, item.source_key)

    @admin.display(description="Status")
    def status_display(self, item):
        return status_badge(item)


@admin.register(Invoice)
class InvoiceAdmin(RecordAdmin):
    """Invoices and credit notes, read-only; post, refresh and credit through the services."""

    list_display = ["__str__", "kind", "client", "currency", "period_display", "status_display", "net", "vat",
                    "gross", "run", "posted_at"]
    list_filter = ["status", "kind", "currency"]
    search_fields = ["number", "client__name"]
    list_select_related = ["client", "run"]
    actions = ["post_selected", "refresh_selected", "credit_selected"]
    inlines = [InvoiceLineInline]
    change_form_template = "admin/billing/record_change_form.html"
    fieldsets = [
        (None, {"fields": ["number", "kind", "state_display", "client", "currency", "period_month", "run",
                           "credited_invoice"]}),
        ("Amounts", {"fields": ["amounts_display"]}),
        ("History", {"fields": ["built_at", "posted_at", "posted_by", "created_at"]}),
    ]

    @admin.display(description="Period", ordering="period_month")
    def period_display(self, invoice):
        return f"{invoice.period_month:%Y-%m}" if invoice.period_month else "-"

    @admin.display(description="Status", ordering="status")
    def status_display(self, invoice):
        return invoice_badge(invoice)

    @admin.display(description="Net / VAT / gross")
    def amounts_display(self, invoice):
        totals = invoice_totals(invoice)
        draft = " (from the draft's current lines)" if invoice.status == Invoice.Status.DRAFT else ""
        return f"{totals.net} / {totals.vat} / {totals.gross} {invoice.currency}{draft}"

    @admin.display(description="Status")
    def state_display(self, invoice):
        """With the stale check on a draft's own page (it recomputes the lines: not in the list)."""
        reasons = invoicing.stale_reasons(invoice)
        if not reasons:
            return invoice_badge(invoice)
        return format_html("{} {} {}", invoice_badge(invoice), stale_badge(reasons), "; ".join(reasons))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [path("<path:object_id>/post/", wrap(self.post_view), name="billing_invoice_post"),
                path("<path:object_id>/refresh/", wrap(self.refresh_view), name="billing_invoice_refresh"),
                path("<path:object_id>/credit/", wrap(self.credit_view), name="billing_invoice_credit"),
                path("<path:object_id>/remove/<int:item_id>/", wrap(self.remove_line_view),
                     name="billing_invoice_remove_line"),
                *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)
        return super().change_view(request, object_id, form_url, {
            "object_actions": self.object_actions(request, invoice) if invoice else [], **(extra_context or {})})

    def object_actions(self, request, invoice: Invoice) -> list[dict]:
        def button(name: str, label: str) -> dict:
            return {"label": label, "url": reverse(f"admin:billing_invoice_{name}", args=[invoice.pk]), "post": True}

        actions = []
        if invoice.status == Invoice.Status.DRAFT:
            if self.may(request, "manage"):
                actions.append(button("refresh", "Refresh"))
            if self.may(request, "admin"):
                actions.append(button("post", "Post"))
            if invoice.run_id:
                actions.append({"label": "Workbench", "url": f"{workbench_url()}?"
                                + urlencode({"period": f"{invoice.run.period_month:%Y-%m}",
                                             "client": invoice.client_id, "invoice": invoice.pk})})
            return actions
        if invoice.kind == Invoice.Kind.INVOICE and self.may(request, "admin"):
            actions.append(button("credit", "Credit all lines"))
        return [*actions, {"label": "PDF", "url": INVOICE_PDF_URL.format(pk=invoice.pk)}]

    def _visible(self, request, object_id) -> Invoice:
        invoice = self.get_object(request, object_id)
        if invoice is None:
            raise Http404
        return invoice

    def _confirm(self, request, invoices, title: str, intro: str, button: str, cancel_url: str):
        return confirmation(self, request, title=title, intro=intro, headers=INVOICE_HEADERS,
                            rows=invoice_rows(with_lines(invoices.order_by("pk"))), button=button,
                            cancel_url=cancel_url)

    def _post(self, request, invoice):
        return invoicing.invoice_post(actor=request.user, invoice=invoice)

    def _credit(self, request, invoice):
        note = invoicing.invoice_credit(actor=request.user, invoice=invoice)
        return f"Credit note {note.number} for {invoice.number}: net {note.net} {note.currency}."

    def _refresh(self, request, invoice):
        refreshed = invoicing.invoice_refresh(actor=request.user, invoice=invoice)
        if refreshed is None:
            return f"Refreshed {invoice.label}: no pending items left, so the draft was removed."
        return f"Refreshed {refreshed.label}: {refreshed.items.count()} line(s)."

    def post_view(self, request, object_id):
        invoice = self._visible(request, object_id)
        url = invoice_url(invoice)
        return perform(self, request, "admin", lambda: posted_message([self._post(request, invoice)]),
                       default_next=url,
                       ask=lambda: self._confirm(request, Invoice.objects.filter(pk=invoice.pk), "Post invoice",
                                                 "Post this draft: it gets the next invoice number and can no longer "
                                                 "change, only be credited.", "Post", url))

    def credit_view(self, request, object_id):
        invoice = self._visible(request, object_id)
        url = invoice_url(invoice)
        return perform(self, request, "admin", lambda: self._credit(request, invoice), default_next=url,
                       ask=lambda: self._confirm(request, Invoice.objects.filter(pk=invoice.pk), "Credit invoice",
                                                 "Make a posted credit note reversing every line of this invoice; "
                                                 "their sources unlock and are billed again.", "Credit all lines",
                                                 url))

    def refresh_view(self, request, object_id):
        invoice = self._visible(request, object_id)
        return perform(self, request, "manage", lambda: self._refresh(request, invoice),
                       default_next=reverse("admin:billing_invoice_changelist"))

    def remove_line_view(self, request, object_id, item_id):
        """Remove from run: the line goes back to pending and its source unlocks."""
        invoice = self._visible(request, object_id)
        item = BillingItem.objects.filter(pk=item_id, invoice=invoice).first()
        if item is None:
            raise Http404

        def remove():
            removed = invoicing.invoice_remove_line(actor=request.user, invoice=invoice, item=item)
            return f"Removed {removed.source_key} from {invoice.label}; it is {removed.get_status_display().lower()}."

        return perform(self, request, "manage", remove, default_next=reverse("admin:billing_invoice_changelist"))

    def _ask_selected(self, request, queryset, title: str, intro: str, button: str):
        return self._confirm(request, queryset, title, intro, button, request.get_full_path())

    @admin.action(description="Post selected drafts", permissions=["admin"])
    def post_selected(self, request, queryset):
        drafts = queryset.filter(status=Invoice.Status.DRAFT)
        if "confirm" not in request.POST:
            return self._ask_selected(request, drafts, "Post invoices", "Post these drafts; each gets the next "
                                      "invoice number.", f"Post {drafts.count()} invoice(s)")
        self.apply_each(request, drafts.order_by("pk"), lambda invoice: self._post(request, invoice), posted_message)
        return None

    @admin.action(description="Refresh selected drafts", permissions=["manage"])
    def refresh_selected(self, request, queryset):
        self.apply_each(request, queryset.order_by("pk"), lambda invoice: self._refresh(request, invoice),
                        lambda done: " ".join(done))

    @admin.action(description="Credit all lines of selected invoices", permissions=["admin"])
    def credit_selected(self, request, queryset):
        if "confirm" not in request.POST:
            return self._ask_selected(request, queryset, "Credit invoices", "Make a credit note reversing every "
                                      "line of each of these posted invoices.", "Credit all lines")
        self.apply_each(request, queryset.order_by("pk"), lambda invoice: self._credit(request, invoice),
                        lambda done: " ".join(done))
        return None
