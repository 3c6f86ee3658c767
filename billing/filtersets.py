"""django-filter sets of the billing API. Ids are integers (anything else is a 400), projects are
keys, periods are `YYYY-MM`; a value that does not parse is a 400 with a code, never a 500."""

import django_filters
from django import forms
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from tickets.models import Ticket

from . import periods
from .choices import ItemStatus, LogAction, RunStatus, RunTrigger, SourceType
from .models import BillingItem, BillingLog, BillingRun, Client, Contract, Invoice, ReconciliationRun, SalesLine

INVALID_PERIOD_MESSAGE = "Give a period as YYYY-MM, e.g. 2026-10."
# Ids are 64-bit; a larger number is refused here, before the database driver overflows on it.
MAX_ID = 2**63 - 1


def _keys(value: str) -> list[str]:
    return [part.strip().upper() for part in value.split(",") if part.strip()]


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """An object id: a whole number (`1.5` and `abc` are refused, not rounded or ignored)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class PeriodField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            return periods.parse_period(value)
        except ValueError:
            raise forms.ValidationError(INVALID_PERIOD_MESSAGE, code="invalid_period") from None


@extend_schema_field({"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$", "example": "2026-10"})
class PeriodFilter(django_filters.Filter):
    """`YYYY-MM` → the first day of that month, compared with `field_name`."""

    field_class = PeriodField


class ProjectKeysFilter(django_filters.CharFilter):
    """Project key(s), comma-separated, looked up through `field_name` (a path to a project)."""

    def filter(self, queryset, value):
        if not value:
            return queryset
        queryset = queryset.filter(**{f"{self.field_name}__key__in": _keys(value)})
        return queryset.distinct() if self.distinct else queryset


class ClientFilter(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter()
    currency = django_filters.CharFilter()
    q = django_filters.CharFilter(method="filter_text", label="Name or org number contains")

    class Meta:
        model = Client
        fields = []

    def filter_text(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(org_number__icontains=value))


class ContractFilter(django_filters.FilterSet):
    client = IdFilter(field_name="client_id")
    project = ProjectKeysFilter(field_name="projects", distinct=True, label="Project key(s), comma-separated")
    active_on = django_filters.DateFilter(method="filter_active_on", label="In force on this date")

    class Meta:
        model = Contract
        fields = []

    def filter_active_on(self, queryset, name, value):
        return queryset.filter(valid_from__lte=value).filter(Q(valid_to__isnull=True) | Q(valid_to__gte=value))


class SalesLineFilter(django_filters.FilterSet):
    client = IdFilter(field_name="client_id")
    contract = IdFilter(field_name="contract_id")
    project = ProjectKeysFilter(field_name="project", label="Project key(s), comma-separated")
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = SalesLine
        fields = []


class BillingItemFilter(django_filters.FilterSet):
    client = IdFilter(field_name="client_id")
    contract = IdFilter(field_name="contract_id")
    # distinct=False here and below: django-filter's default wraps the whole query in SELECT DISTINCT
    # over every column (sorting the full filtered set before paging); a filter on the row's own
    # column cannot duplicate rows.
    status = django_filters.MultipleChoiceFilter(choices=ItemStatus.choices, distinct=False)
    source_type = django_filters.MultipleChoiceFilter(choices=SourceType.choices, distinct=False)
    period = PeriodFilter(field_name="period_month", label="Billing month, YYYY-MM")
    project = ProjectKeysFilter(field_name="project", label="Project key(s), comma-separated")
    ticket = django_filters.CharFilter(method="filter_ticket", label="Ticket key (MNX-12) or id")
    invoice = IdFilter(field_name="invoice_id")
    run = IdFilter(field_name="run_id")
    reconciliation_run = IdFilter(field_name="reconciliation_run_id")

    class Meta:
        model = BillingItem
        fields = []

    def filter_ticket(self, queryset, name, value):
        text = value.strip()
        if text.isascii() and text.isdigit():
            # Items outlive their tickets (no database constraint): an id matches as given.
            return queryset.filter(ticket_id=int(text)) if int(text) <= MAX_ID else queryset.none()
        return queryset.filter(ticket_id__in=Ticket.objects.by_key(text).values("pk"))


class ReconciliationRunFilter(django_filters.FilterSet):
    trigger = django_filters.MultipleChoiceFilter(choices=RunTrigger.choices, distinct=False)
    status = django_filters.MultipleChoiceFilter(choices=RunStatus.choices, distinct=False)

    class Meta:
        model = ReconciliationRun
        fields = []


class BillingLogFilter(django_filters.FilterSet):
    action = django_filters.MultipleChoiceFilter(choices=LogAction.choices, distinct=False)
    reconciliation_run = IdFilter(field_name="reconciliation_run_id")

    class Meta:
        model = BillingLog
        fields = []


class BillingRunFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=BillingRun.Status.choices, distinct=False)
    period = PeriodFilter(field_name="period_month", label="Billing month, YYYY-MM")
    client = IdFilter(method="filter_client", label="Runs with an invoice for this client id")
    created_by = django_filters.CharFilter(field_name="created_by__username", label="Username of who built it")

    class Meta:
        model = BillingRun
        fields = []

    def filter_client(self, queryset, name, value):
        return queryset.filter(pk__in=Invoice.objects.filter(client_id=value).values("run_id"))


class InvoiceFilter(django_filters.FilterSet):
    client = IdFilter(field_name="client_id")
    status = django_filters.MultipleChoiceFilter(choices=Invoice.Status.choices, distinct=False)
    kind = django_filters.MultipleChoiceFilter(choices=Invoice.Kind.choices, distinct=False)
    period = PeriodFilter(field_name="period_month", label="Billing month, YYYY-MM")
    number = django_filters.CharFilter(lookup_expr="iexact", label="Invoice number, e.g. 2026-0001")
    run = IdFilter(field_name="run_id")
    credited_invoice = IdFilter(field_name="credited_invoice_id", label="Credit notes of this invoice id")

    class Meta:
        model = Invoice
        fields = []
