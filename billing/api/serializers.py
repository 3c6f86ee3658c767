"""Serializers of the billing API. They validate shape only (ids, keys, decimals, periods);
the services decide rights and rules. References resolve only among rows the caller's billing
access lets them see, so ids cannot be probed."""

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing import invoicing, periods
from billing.choices import RunStatus
from billing.filtersets import INVALID_PERIOD_MESSAGE, MAX_ID
from billing.models import (
    BillingItem,
    BillingLog,
    BillingRun,
    BillingSettings,
    Client,
    Contract,
    Invoice,
    ReconciliationRun,
    SalesLine,
    UnmatchedSource,
)
from billing.querysets import billing_allows
from billing.selectors import MoneyTotals, totals_by_currency
from tickets.api.fields import ProjectReferenceField
from tickets.choices import Activity
from tickets.models import Project

UNKNOWN_ACTIVITY_MESSAGE = "Unknown activity {activity!r}; use one of: {choices}."
UNKNOWN_CLIENT_MESSAGE = "No client with id {client}."
EXPORT_FORMATS = ("csv", "json")


def _request_user(field):
    request = field.context.get("request")
    return getattr(request, "user", None)


class BillingReferenceField(serializers.PrimaryKeyRelatedField):
    """An id of a billing row (client, contract) the caller may read; else `does_not_exist`."""

    def __init__(self, model, **kwargs):
        self.model = model
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.model.objects.visible_to(_request_user(self), "read")


class BillingProjectField(ProjectReferenceField):
    """A project key. Billing is global: billing staff may name any project, members or not."""

    def get_queryset(self):
        return Project.objects.all() if billing_allows(_request_user(self), "read") else Project.objects.none()


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class ProjectKeysField(serializers.ListField):
    """Project keys in; the contract's project keys out (from the prefetched relation)."""

    child = BillingProjectField()

    def to_representation(self, manager):
        return sorted(project.key for project in manager.all())


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string", "format": "decimal"},
                      "example": {"development": "1200.00"}})
class RateCardField(serializers.DictField):
    """The rate card as {activity: hourly rate}; in, the activity must be a known one."""

    child = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    default_error_messages = {"invalid_activity": UNKNOWN_ACTIVITY_MESSAGE}

    def to_internal_value(self, data):
        rates = super().to_internal_value(data)
        for activity in rates:
            if activity not in Activity.values:
                self.fail("invalid_activity", activity=activity, choices=", ".join(Activity.values))
        return rates

    def to_representation(self, manager):
        return {rate.activity: str(rate.hourly_rate) for rate in manager.all()}


class PeriodField(serializers.CharField):
    """`YYYY-MM` in and out; internally the first day of the month."""

    default_error_messages = {"invalid_period": INVALID_PERIOD_MESSAGE}

    def to_internal_value(self, data):
        try:
            return periods.parse_period(super().to_internal_value(data))
        except ValueError:
            self.fail("invalid_period")

    def to_representation(self, value) -> str:
        return f"{value:%Y-%m}"


class UsernameField(serializers.SlugRelatedField):
    """A user as their username; null when there is none (the system, or a deleted user)."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", read_only=True, allow_null=True, **kwargs)


class ClientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Client
        fields = ["id", "name", "org_number", "currency", "vat_rate", "time_zone", "is_active", "created_at",
                  "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Left out on create: the defaults of the billing settings.
        extra_kwargs = {"currency": {"required": False}, "vat_rate": {"required": False},
                        "time_zone": {"required": False}}


class ContractSerializer(serializers.ModelSerializer):
    client = BillingReferenceField(Client, help_text="Client id.")
    projects = ProjectKeysField(required=False, help_text="Keys of the projects the contract covers, e.g. [\"MNX\"].")
    rates = RateCardField(required=False, help_text="Rate card: activity → hourly rate; other activities use "
                                                    "`hourly_rate`.")

    class Meta:
        model = Contract
        fields = ["id", "client", "name", "projects", "valid_from", "valid_to", "hourly_rate", "monthly_fee",
                  "timebank_hours", "overage_rate", "rounding_minutes", "rates", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class SalesLineSerializer(serializers.ModelSerializer):
    client = BillingReferenceField(Client, help_text="Client id.")
    contract = BillingReferenceField(Contract, required=False, allow_null=True,
                                     help_text="Contract id (of the same client).")
    project = BillingProjectField(required=False, allow_null=True, help_text="Project key, e.g. MNX.")
    created_by = UsernameField()

    class Meta:
        model = SalesLine
        fields = ["id", "client", "contract", "project", "date", "description", "qty", "unit_price", "created_by",
                  "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class BillingItemSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True,
                                           help_text="Project key.")
    ticket = serializers.SerializerMethodField(help_text="Ticket key, e.g. MNX-12.")
    period = PeriodField(source="period_month", read_only=True, help_text="Billing month, YYYY-MM.")
    superseded_by = serializers.SerializerMethodField(help_text="Id of the item that replaced this one.")

    class Meta:
        model = BillingItem
        fields = ["id", "source_key", "source_type", "source_id", "source_date", "client", "contract", "project",
                  "ticket", "description", "qty", "unit_price", "total", "currency", "vat_rate", "status", "invoice",
                  "run", "reconciliation_run", "period", "period_start", "period_end", "supersedes",
                  "superseded_by", "original_item", "void_reason", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_ticket(self, item) -> str | None:
        ticket = item.ticket
        return ticket.key if ticket is not None else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_superseded_by(self, item) -> int | None:
        newer = getattr(item, "superseded_by", None)  # reverse one-to-one: missing raises AttributeError
        return newer.pk if newer is not None else None


class VoidSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, allow_blank=True, default="",
                                   help_text="Why the item is not billed (required).")


class RunCountsSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReconciliationRun
        fields = ["created", "superseded", "unchanged", "unmatched", "skipped_locked"]
        read_only_fields = fields


class RunProgressSerializer(serializers.ModelSerializer):
    percent = serializers.SerializerMethodField()

    class Meta:
        model = ReconciliationRun
        fields = ["processed", "total", "items_processed", "percent"]
        read_only_fields = fields

    def get_percent(self, run) -> int:
        if run.status == RunStatus.SUCCEEDED:
            return 100
        return min(100, run.processed * 100 // run.total) if run.total else 0


class ReconciliationRunSerializer(serializers.ModelSerializer):
    actor = UsernameField(help_text="Empty: the system.")
    counts = RunCountsSerializer(source="*", read_only=True)
    progress = RunProgressSerializer(source="*", read_only=True)
    duration_ms = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = ReconciliationRun
        fields = ["id", "task_id", "trigger", "actor", "scope", "status", "counts", "progress", "duration_ms", "error",
                  "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class UnmatchedSourceSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True,
                                           help_text="Project key.")

    class Meta:
        model = UnmatchedSource
        fields = ["id", "source_type", "source_id", "reason", "project", "client", "source_date", "detail"]
        read_only_fields = fields


class BillingLogSerializer(serializers.ModelSerializer):
    actor = UsernameField(help_text="Empty: the system.")

    class Meta:
        model = BillingLog
        fields = ["id", "action", "actor", "scope", "item_count", "duration_ms", "summary", "reconciliation_run",
                  "created_at"]
        read_only_fields = fields


class RecalculateSerializer(serializers.Serializer):
    client = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID,
                                      help_text="Client id.")
    contract = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID,
                                        help_text="Contract id.")
    period = PeriodField(required=False, allow_null=True, help_text="Billing month, YYYY-MM.")


class RecalculationQueuedSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    run = serializers.IntegerField(help_text="Id of the reconciliation run.")
    status = serializers.CharField()
    status_url = serializers.URLField(help_text="GET it to follow the run.")


class BillingSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = BillingSettings
        fields = ["reconcile_on_save", "manual_recalculation", "default_currency", "default_vat_rate",
                  "default_time_zone", "updated_at"]
        read_only_fields = ["updated_at"]


# --- Runs and invoices -----------------------------------------------------------------------------

def _ids_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False,
                                 allow_empty=True, **kwargs)


class OptionalBooleanField(serializers.BooleanField):
    """Left out means the default, in a form post too (DRF reads a missing form checkbox as false)."""

    default_empty_html = serializers.empty


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string", "format": "decimal"},
                      "example": {"NOK": "15000.00"}})
class AmountsField(serializers.DictField):
    """{currency: amount} out, amounts as decimal strings."""

    def to_representation(self, value):
        return {currency: f"{amount:.2f}" for currency, amount in sorted(value.items())}


class PageTotalsListSerializer(serializers.ListSerializer):
    """A list whose child needs figures that are not columns: the child's `attach(instances)` adds
    them to the whole page at once (a constant number of queries, whatever the page size)."""

    def to_representation(self, data):
        instances = list(data.all() if hasattr(data, "all") else data)
        self.child.attach([instance for instance in instances if not hasattr(instance, "totals")])
        return super().to_representation(instances)


class PageTotalsMixin:
    def to_representation(self, instance):
        if not hasattr(instance, "totals"):
            self.attach([instance])
        return super().to_representation(instance)


@dataclass
class RunTotals:
    items: int = 0
    net: dict[str, Decimal] = field(default_factory=dict)


class BillingRunSerializer(PageTotalsMixin, serializers.ModelSerializer):
    period = PeriodField(source="period_month", read_only=True, help_text="Billing month, YYYY-MM.")
    client_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True, allow_null=True,
                                       help_text="The clients asked for; null: every active client.")
    created_by = UsernameField()
    invoice_count = serializers.IntegerField(read_only=True, help_text="Invoices the run built (draft or posted).")
    draft_count = serializers.IntegerField(read_only=True, help_text="Of those, still drafts.")
    item_count = serializers.IntegerField(source="totals.items", read_only=True,
                                          help_text="Lines on the run's invoices.")
    net = AmountsField(source="totals.net", read_only=True, help_text="Net of the run's invoices per currency.")

    class Meta:
        model = BillingRun
        fields = ["id", "period", "include_prior_periods", "client_ids", "status", "created_by", "created_at",
                  "posted_at", "invoice_count", "draft_count", "item_count", "net"]
        read_only_fields = fields
        list_serializer_class = PageTotalsListSerializer

    @staticmethod
    def attach(runs) -> None:
        """Line count and net per currency of each run, in one query."""
        totals = {run.pk: RunTotals() for run in runs}
        rows = (BillingItem.objects.filter(invoice__run_id__in=totals).order_by()
                .values_list("invoice__run_id", "currency").annotate(count=Count("pk"), net=Sum("total")))
        for run_id, currency, count, net in rows:
            totals[run_id].items += count
            totals[run_id].net[currency] = net
        for run in runs:
            run.totals = totals[run.pk]


class InvoiceSerializer(PageTotalsMixin, serializers.ModelSerializer):
    """An invoice or credit note as lists show it. Net, VAT and gross of a draft are computed from
    its current lines; a posted invoice's are the ones it was posted with."""

    client_name = serializers.CharField(source="client.name", read_only=True)
    period = PeriodField(source="period_month", read_only=True, allow_null=True, help_text="Billing month, YYYY-MM.")
    line_count = serializers.IntegerField(read_only=True)
    net = serializers.DecimalField(max_digits=16, decimal_places=2, source="totals.net", read_only=True)
    vat = serializers.DecimalField(max_digits=16, decimal_places=2, source="totals.vat", read_only=True)
    gross = serializers.DecimalField(max_digits=16, decimal_places=2, source="totals.gross", read_only=True)
    posted_by = UsernameField()

    class Meta:
        model = Invoice
        fields = ["id", "kind", "status", "number", "client", "client_name", "currency", "period", "run",
                  "credited_invoice", "line_count", "net", "vat", "gross", "built_at", "posted_at", "posted_by",
                  "created_at"]
        read_only_fields = fields
        list_serializer_class = PageTotalsListSerializer

    @staticmethod
    def attach(invoices) -> None:
        """Totals of each invoice; the drafts' from their lines, in one query."""
        drafts = {invoice.pk for invoice in invoices if invoice.status == Invoice.Status.DRAFT}
        lines = defaultdict(list)
        rows = BillingItem.objects.filter(invoice_id__in=drafts).values_list("invoice_id", "currency", "total",
                                                                            "vat_rate")
        for invoice_id, *line in (rows if drafts else ()):
            lines[invoice_id].append(line)
        for invoice in invoices:
            if invoice.pk in drafts:
                invoice.totals = totals_by_currency(lines[invoice.pk]).get(invoice.currency, MoneyTotals())
            else:
                invoice.totals = MoneyTotals(net=invoice.net, vat=invoice.vat)


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = BillingItemSerializer(source="items", many=True, read_only=True)
    credit_notes = serializers.PrimaryKeyRelatedField(many=True, read_only=True,
                                                      help_text="Ids of the credit notes against this invoice.")
    stale = serializers.SerializerMethodField(help_text="A draft that no longer matches its sources; refresh it.")
    stale_reasons = serializers.SerializerMethodField()

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "stale", "stale_reasons", "credit_notes", "lines"]
        read_only_fields = fields

    def _reasons(self, invoice) -> list[str]:
        if not hasattr(invoice, "stale_reasons"):
            # A fresh calculation for the draft's client: affordable for one invoice, not for a list.
            drafted = invoice.status == Invoice.Status.DRAFT
            invoice.stale_reasons = invoicing.stale_reasons(invoice) if drafted else []
        return invoice.stale_reasons

    def get_stale(self, invoice) -> bool:
        return bool(self._reasons(invoice))

    def get_stale_reasons(self, invoice) -> list[str]:
        return self._reasons(invoice)


class RunBuildSerializer(serializers.Serializer):
    period = PeriodField(help_text="Billing month, YYYY-MM.")
    clients = _ids_field(help_text="Client ids; left out or empty: every active client.")
    include_prior_periods = OptionalBooleanField(default=True, help_text="Also bill pending items of earlier months.")
    dry_run = OptionalBooleanField(default=False, help_text="Only say what a build would do; write nothing.")

    def validate_clients(self, ids: list[int]) -> list[int]:
        ids = sorted(set(ids))
        known = set(Client.objects.visible_to(_request_user(self), "read").filter(pk__in=ids)
                    .values_list("pk", flat=True))
        missing = [pk for pk in ids if pk not in known]
        if missing:
            raise serializers.ValidationError(UNKNOWN_CLIENT_MESSAGE.format(client=missing[0]), code="does_not_exist")
        return ids


class BuildPlanSerializer(serializers.Serializer):
    client = serializers.IntegerField(help_text="Client id.")
    currency = serializers.CharField()
    items = serializers.IntegerField(help_text="Items the draft reserves (on a dry run: would reserve).")
    net = serializers.DecimalField(max_digits=16, decimal_places=2)
    invoice = serializers.IntegerField(allow_null=True, help_text="The draft's id; null on a dry run.")


class SkippedClientSerializer(serializers.Serializer):
    client = serializers.IntegerField(help_text="Client id.")
    run = serializers.IntegerField(help_text="The open run that holds it.")
    invoice = serializers.IntegerField(help_text="Its draft in that run.")
    detail = serializers.CharField()


class BuildResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    run = BillingRunSerializer(allow_null=True, help_text="The new run; null on a dry run.")
    plan = BuildPlanSerializer(many=True, help_text="One entry per client and currency.")
    drafts = InvoiceSerializer(many=True, help_text="The draft invoices built; empty on a dry run.")
    skipped = SkippedClientSerializer(many=True, help_text="Clients another open run holds for this month.")


class RunPostedSerializer(serializers.Serializer):
    run = BillingRunSerializer()
    invoices = InvoiceSerializer(many=True, help_text="The invoices just posted, with their numbers.")


class CreditSerializer(serializers.Serializer):
    items = _ids_field(help_text="Ids of the lines to credit; left out or empty: every line.")


class DebitSerializer(serializers.Serializer):
    item = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Id of the invoice line it adjusts.")
    qty = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0.0001"))
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0"))
    description = serializers.CharField(max_length=500)


class RemoveLineSerializer(serializers.Serializer):
    void_reason = serializers.CharField(max_length=500, allow_blank=True, default="",
                                        help_text="Given: the line is voided (not billed) instead of going back "
                                                  "to pending.")


class ExportFormatSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=EXPORT_FORMATS, default="csv")
