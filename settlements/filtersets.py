"""Filters of the settlement list: status, projects (multi), period/date range, text."""

import django_filters
from django.db.models import Q

from .choices import SettlementStatus
from .models import Settlement, SettlementProject


class SettlementFilter(django_filters.FilterSet):
    # distinct=False: django-filter's default wraps the whole query in SELECT DISTINCT
    # over every column (sorting the full filtered set before paging); a filter on the row's own
    # column cannot duplicate rows.
    status = django_filters.MultipleChoiceFilter(choices=SettlementStatus.choices, distinct=False)
    project = django_filters.CharFilter(method="filter_project", label="Project key(s), comma-separated")
    date_from = django_filters.DateFilter(method="filter_date_from", label="Period ends on or after")
    date_to = django_filters.DateFilter(method="filter_date_to", label="Period starts on or before")
    q = django_filters.CharFilter(method="filter_text", label="Name or number (ROZ-12) contains")

    class Meta:
        model = Settlement
        fields = []

    def filter_project(self, queryset, name, value):
        keys = [part.strip().upper() for part in value.split(",") if part.strip()]
        return queryset.filter(pk__in=SettlementProject.objects.filter(project__key__in=keys).values("settlement_id"))

    def filter_date_from(self, queryset, name, value):
        return queryset.filter(period_end__gte=value)

    def filter_date_to(self, queryset, name, value):
        return queryset.filter(period_start__lte=value)

    def filter_text(self, queryset, name, value):
        text = value.strip()
        condition = Q(name__icontains=text)
        number = text.rsplit("-", 1)[-1]
        if number.isascii() and number.isdigit():
            condition |= Q(number=int(number))
        return queryset.filter(condition)
