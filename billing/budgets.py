"""The money side of project budgets: what billing charges for each project's work, as the budget
pages of `tickets` show it. Registered with the tickets budget-meter registry (tickets cannot
import billing).

Money consumed is the net total of the project's billing items that stand for billed work:
`pending`, `reserved` and `invoiced` items count; `void` (not to be billed), `superseded`
(replaced by a newer item) and `credited` (reversed) items do not. Credit-note lines are left out
too: the originals they reverse are already excluded as `credited`, and the corrected source is
billed again by a new item, so counting both would subtract the work twice. Items without a
project (a contract's monthly fee covers several projects) belong to no project's budget."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from tickets.extensions import register_budget_meter

from .choices import SourceType
from .models import BillingItem
from .selectors import BILLED_STATUSES


def _consuming_items():
    return BillingItem.objects.filter(status__in=BILLED_STATUSES).exclude(source_type=SourceType.CREDIT)


class BillingBudgetMeter:
    """Money consumed per project from billing items (see the module docstring for which count)."""

    def money_consumed(self, project_ids) -> dict[int, dict[str, Decimal]]:
        rows = (_consuming_items().filter(project_id__in=list(project_ids))
                .values_list("project_id", "currency").annotate(amount=Sum("total")).order_by())
        consumed: dict[int, dict[str, Decimal]] = defaultdict(dict)
        for project_id, currency, amount in rows:
            consumed[project_id][currency] = amount
        return dict(consumed)

    def money_by_date(self, project_id: int, currency: str) -> list[tuple[date, Decimal]]:
        rows = (_consuming_items().filter(project_id=project_id, currency=currency)
                .values_list("source_date").annotate(amount=Sum("total")).order_by("source_date"))
        return list(rows)


def register() -> None:
    register_budget_meter(BillingBudgetMeter())
