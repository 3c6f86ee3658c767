"""Serializers of the billing API. They validate shape only (ids, keys, decimals, periods);
the services decide rights and rules. References resolve only among rows the caller's billing
access lets them see, so ids cannot be probed."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing import periods
from billing.choices import RunStatus
from billing.filtersets import INVALID_PERIOD_MESSAGE, MAX_ID
from billing.models import (
    BillingItem,
    BillingLog,
    BillingSettings,
    Client,
    Contract,
    ReconciliationRun,
    SalesLine,
    UnmatchedSource,
)
from billing.querysets import billing_allows
from tickets.api.fields import ProjectReferenceField
from tickets.choices import Activity
from tickets.models import Project

UNKNOWN_ACTIVITY_MESSAGE = "Unknown activity {activity!r}; use one of: {choices}."


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
    def __init__(self, **kwargs):
        super().__init__(slug_field="username", read_only=True, **kwargs)


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
    project = serializers.SlugRelatedField(slug_field="key", read_only=True, help_text="Project key.")
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

    @extend_schema_field(OpenApiTypes.STR)
    def get_ticket(self, item) -> str | None:
        ticket = item.ticket
        return ticket.key if ticket is not None else None

    @extend_schema_field(OpenApiTypes.INT)
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
    project = serializers.SlugRelatedField(slug_field="key", read_only=True, help_text="Project key.")

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
