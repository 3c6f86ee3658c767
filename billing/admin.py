"""Admin screens for billing (SPEC §4). Billing is global, not per project: reading needs
billing.view, changing clients, contracts and sales lines, voiding and recalculating need
billing.manage, the settings need billing.admin (`billing_allows`, each level including the
lower ones). Every write goes through billing.services, so the contract overlap check, the billing
lock and reconciliation apply as everywhere else; a refusal becomes an error message and nothing
is saved. Billing items, reconciliation runs, unmatched sources and the log are read-only records.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.admin import ServiceAdmin
from core.errors import ServiceError
from tickets.models import Project

from . import guards, periods, services
from .choices import ItemStatus, RunStatus, SourceType
from .models import (
    BillingItem,
    BillingLog,
    BillingSettings,
    Client,
    Contract,
    ContractRate,
    ReconciliationRequest,
    ReconciliationRun,
    SalesLine,
    UnmatchedSource,
)
from .querysets import billing_allows
from .reconciliation import Scope

CONTRACT_OF_OTHER_CLIENT_MESSAGE = "Contract “{contract}” belongs to another client than “{client}”."
LOCK_BADGES = {ItemStatus.RESERVED: ("Locked (Draft)", "#b45309"), ItemStatus.INVOICED: ("Locked (Posted)", "#1d4ed8")}
STATUS_COLOURS = {ItemStatus.PENDING: "#15803d", ItemStatus.VOID: "#6b7280", ItemStatus.SUPERSEDED: "#6b7280",
                  ItemStatus.CREDITED: "#7c3aed"}
# The admin page of the record behind a source id, per source type.
SOURCE_ADMIN = {
    SourceType.TICKET_TIME: "admin:tickets_timeentry_change",
    SourceType.TIMEBANK: "admin:tickets_timeentry_change",
    SourceType.EXPENSE: "admin:tickets_expense_change",
    SourceType.CONTRACT_PERIOD: "admin:billing_contract_change",
    SourceType.SALES_ORDER: "admin:billing_salesline_change",
    SourceType.CREDIT: "admin:billing_billingitem_change",
}
UNMATCHED_SHOWN = 100
REFRESH_SECONDS = 2


def _badge(label: str, colour: str):
    return format_html('<span style="background:{};color:#fff;border-radius:4px;padding:1px 6px;'
                       'white-space:nowrap">{}</span>', colour, label)


def status_badge(item: BillingItem):
    label, colour = LOCK_BADGES.get(item.status, (item.get_status_display(), STATUS_COLOURS.get(item.status)))
    return _badge(label, colour or "#6b7280")


def source_link(source_type: str, source_id: int, label: str):
    return format_html('<a href="{}">{}</a>', reverse(SOURCE_ADMIN[source_type], args=[source_id]), label)


def item_link(item: BillingItem | None):
    if item is None:
        return "-"
    return format_html('<a href="{}">{}</a> {}', reverse("admin:billing_billingitem_change", args=[item.pk]),
                       f"#{item.pk} {item.source_key}", status_badge(item))


def run_url(run: ReconciliationRun) -> str:
    return reverse("admin:billing_reconciliationrun_change", args=[run.pk])


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
            modeladmin.message_user(request, f"{label}: {exc.message} ({exc.code})", level=messages.ERROR)
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
        client, contract = data.get("client"), data.get("contract")
        if client and contract and contract.client_id != client.pk:
            raise ValidationError(CONTRACT_OF_OTHER_CLIENT_MESSAGE.format(contract=contract, client=client),
                                  code="contract_of_other_client")
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


class ContractRateInline(admin.TabularInline):
    """The rate card; saved with the contract by the contract service, never on its own."""

    model = ContractRate
    fields = ["activity", "hourly_rate"]
    extra = 0
    verbose_name = "rate card line"
    verbose_name_plural = "rate card (hourly rate per activity; others use the contract's hourly rate)"

    def has_view_permission(self, request, obj=None) -> bool:
        return billing_allows(request.user, "read")

    def has_add_permission(self, request, obj=None) -> bool:
        return billing_allows(request.user, "manage")

    def has_change_permission(self, request, obj=None) -> bool:
        return billing_allows(request.user, "manage")

    def has_delete_permission(self, request, obj=None) -> bool:
        return billing_allows(request.user, "manage")


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
        done = 0
        for item in queryset:
            try:
                call(item)
                done += 1
            except ServiceError as exc:
                self.message_user(request, f"{item.source_key}: {exc.message} ({exc.code})", level=messages.ERROR)
        if done:
            self.message_user(request, f"{done_label} {done} item(s).", level=messages.SUCCESS)

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
        if run.status == RunStatus.QUEUED:
            return "Waiting for a worker"
        return format_html('<progress value="{}" max="{}"></progress> {} / {} clients', run.processed,
                           max(run.total, 1), run.processed, run.total)

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
