"""django-filter sets of the tickets API."""

import django_filters
from django.db.models import Q

from .choices import Activity, TicketPriority, TicketStatus
from .models import Expense, Project, Ticket, TimeEntry
from .querysets import TICKET_KEY_RE


def _keys(value: str) -> list[str]:
    return [part.strip().upper() for part in value.split(",") if part.strip()]


class ProjectFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_text", label="Key or name contains")

    class Meta:
        model = Project
        fields = ["is_active"]

    def filter_text(self, queryset, name, value):
        return queryset.filter(Q(key__icontains=value) | Q(name__icontains=value))


class TicketFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(method="filter_project", label="Project key(s), comma-separated")
    # distinct=False here and below: django-filter's default wraps the whole query in SELECT DISTINCT
    # over every column (sorting the full filtered set before paging); a filter on the row's own
    # column cannot duplicate rows.
    status = django_filters.MultipleChoiceFilter(choices=TicketStatus.choices, distinct=False)
    priority = django_filters.MultipleChoiceFilter(choices=TicketPriority.choices, distinct=False)
    assignee = django_filters.CharFilter(method="filter_assignee", label="Username, 'me' or 'none'")
    q = django_filters.CharFilter(method="filter_text", label="Key, title or description contains")
    due_before = django_filters.DateFilter(field_name="due_date", lookup_expr="lte")
    due_after = django_filters.DateFilter(field_name="due_date", lookup_expr="gte")
    ordering = django_filters.OrderingFilter(
        fields=(("project__key", "project"), "number", "priority", "status", "due_date", "created_at",
                "updated_at"),
    )

    class Meta:
        model = Ticket
        fields = []

    def filter_project(self, queryset, name, value):
        return queryset.filter(project__key__in=_keys(value))

    def filter_assignee(self, queryset, name, value):
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        if value == "me":
            return queryset.filter(assignee=self.request.user)
        return queryset.filter(assignee__username=value)

    def filter_text(self, queryset, name, value):
        text = value.strip()
        condition = Q(title__icontains=text) | Q(description__icontains=text)
        match = TICKET_KEY_RE.match(text)
        if match:
            condition |= Q(project__key=match["project"].upper(), number=int(match["number"]))
        elif text.isascii() and text.isdigit():
            condition |= Q(number=int(text))
        return queryset.filter(condition)


class _RecordFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(method="filter_project", label="Project key(s), comma-separated")
    ticket = django_filters.CharFilter(method="filter_ticket", label="Ticket key (MNX-12)")
    user = django_filters.CharFilter(field_name="user__username")
    billable = django_filters.BooleanFilter()

    def filter_project(self, queryset, name, value):
        return queryset.filter(ticket__project__key__in=_keys(value))

    def filter_ticket(self, queryset, name, value):
        match = TICKET_KEY_RE.match(value.strip())
        if not match:
            return queryset.none()
        return queryset.filter(ticket__project__key=match["project"].upper(), ticket__number=int(match["number"]))


class TimeEntryFilter(_RecordFilter):
    date_from = django_filters.DateFilter(field_name="work_date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="work_date", lookup_expr="lte")
    activity = django_filters.MultipleChoiceFilter(choices=Activity.choices, distinct=False)

    class Meta:
        model = TimeEntry
        fields = []


class ExpenseFilter(_RecordFilter):
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")
    currency = django_filters.CharFilter()

    class Meta:
        model = Expense
        fields = []
