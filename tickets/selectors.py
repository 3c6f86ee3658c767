"""Reads of the dashboard pages that are more than one filter: project budgets (hours and money
consumed against budget, with the 80 % warning and 100 % states), the burn-up series and its chart
geometry, tickets per status, the Kanban columns, project members, and the "My work" lists.

Every read starts from `visible_to(user, action)` or from objects that already passed it, and
costs a fixed number of queries however many rows it covers. Money consumed comes from the
budget meter another app registers (tickets/extensions.py); without one it is "not tracked"."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from rbac.choices import ProjectPermission as P
from rbac.models import ProjectUserObjectPermission
from rbac.querysets import permission_id

from .choices import TicketPriority, TicketStatus
from .extensions import budget_meter
from .models import Project, Ticket, TimeEntry

WARN_RATIO = Decimal("0.8")
HUNDRED = Decimal(100)
CENT = Decimal("0.01")
# Up to about a quarter, one point per day; longer spans are summed per week (Monday first),
# so a chart never has more than a few dozen points per year.
DAILY_SPAN_LIMIT_DAYS = 92
# Weekly, then monthly, then yearly points once a daily chart would have more than this.
MAX_CHART_POINTS = 160
PRIORITY_RANK = {value: rank for rank, value in enumerate(reversed(TicketPriority.values))}


# --- Budgets ----------------------------------------------------------------------------------

class BudgetState:
    NONE = "none"  # no budget of this kind, or consumption unknown
    OK = "ok"
    WARN = "warn"  # at or above 80 % of the budget
    OVER = "over"  # the budget is used up (100 % or more)


STATE_SEVERITY = {BudgetState.NONE: 0, BudgetState.OK: 1, BudgetState.WARN: 2, BudgetState.OVER: 3}


@dataclass(frozen=True)
class Meter:
    """Consumption of one budget (hours, or money in the budget currency). `consumed` is None
    when nobody measures it (money without a registered meter)."""

    consumed: Decimal | None
    budget: Decimal | None

    @property
    def tracked(self) -> bool:
        return self.consumed is not None

    @property
    def has_budget(self) -> bool:
        return self.budget is not None

    @property
    def percent(self) -> Decimal | None:
        if self.consumed is None or not self.budget:
            return None
        # Rounded down, so the figure shown never reaches 80 or 100 before the state does.
        return (self.consumed * HUNDRED / self.budget).quantize(Decimal("1"), rounding=ROUND_DOWN)

    @property
    def bar_percent(self) -> int:
        """Width of the meter's bar: the share used, capped at a full bar."""
        if self.state == BudgetState.OVER:
            return 100
        return int(min(self.percent or 0, HUNDRED))

    @property
    def remaining(self) -> Decimal | None:
        if self.consumed is None or self.budget is None:
            return None
        return self.budget - self.consumed

    @property
    def state(self) -> str:
        if self.consumed is None or self.budget is None:
            return BudgetState.NONE
        # A zero budget is used up by any consumption at all.
        if self.consumed >= self.budget and (self.budget > 0 or self.consumed > 0):
            return BudgetState.OVER
        if self.budget > 0 and self.consumed >= self.budget * WARN_RATIO:
            return BudgetState.WARN
        return BudgetState.OK


@dataclass(frozen=True)
class Budget:
    project: Project
    hours: Meter
    money: Meter
    # False when no app measures money (no budget meter registered): shown as "not tracked".
    money_tracked: bool
    # Money billed in other currencies than the budget's: shown, never added to the budget.
    other_currencies: dict[str, Decimal] = field(default_factory=dict)

    @property
    def currency(self) -> str:
        return self.project.budget_currency

    @property
    def state(self) -> str:
        """The worse of the two states."""
        return max(self.hours.state, self.money.state, key=STATE_SEVERITY.__getitem__)

    @property
    def needs_attention(self) -> bool:
        return self.state in (BudgetState.WARN, BudgetState.OVER)


def minutes_to_hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(CENT, rounding=ROUND_HALF_UP)


def project_budgets(projects) -> dict[int, Budget]:
    """Budgets of projects the caller has already checked the user may read. Two queries.

    Hours consumed are all time entries logged in a project, not only those the reader may list:
    the budget belongs to the project, and a partial sum would understate it."""
    projects = list(projects)
    ids = [project.pk for project in projects]
    minutes = dict(TimeEntry.objects.filter(ticket__project_id__in=ids).order_by()
                   .values_list("ticket__project_id").annotate(total=Sum("minutes")))
    meter = budget_meter()
    money = meter.money_consumed(ids) if meter is not None and ids else {}
    return {project.pk: _budget(project, minutes.get(project.pk, 0),
                                None if meter is None else money.get(project.pk, {}))
            for project in projects}


def _budget(project: Project, minutes: int, money: dict[str, Decimal] | None) -> Budget:
    hours = Meter(minutes_to_hours(minutes), project.budget_hours)
    if money is None:
        return Budget(project, hours, Meter(None, project.budget_amount), money_tracked=False)
    currency = project.budget_currency
    consumed = money.get(currency, Decimal("0.00")) if currency else None
    others = {code: amount for code, amount in sorted(money.items()) if code != currency}
    return Budget(project, hours, Meter(consumed, project.budget_amount), True, others)


def projects_needing_attention(user) -> list[Budget]:
    """Readable active projects at or above 80 % of one of their budgets, the worst first."""
    projects = (Project.objects.visible_to(user, "read").filter(is_active=True)
                .filter(Q(budget_hours__isnull=False) | Q(budget_amount__isnull=False)))
    budgets = [budget for budget in project_budgets(projects).values() if budget.needs_attention]
    return sorted(budgets, key=lambda b: (-STATE_SEVERITY[b.state], b.project.key))


# --- Burn-up ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Burnup:
    """Cumulative consumption at the end of each day (or week) from the first record to today."""

    bucket: str  # "day", "week", "month" or "year"
    points: list[tuple[date, Decimal]]
    budget: Decimal | None

    @property
    def warn_level(self) -> Decimal | None:
        return None if self.budget is None else self.budget * WARN_RATIO


def _bucket_of(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    if bucket == "year":
        return day.replace(month=1, day=1)
    return day


def _next_bucket(day: date, bucket: str) -> date | None:
    try:
        if bucket == "month":
            return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        if bucket == "year":
            return day.replace(year=day.year + 1)
        return day + timedelta(days=7 if bucket == "week" else 1)
    except (OverflowError, ValueError):  # past date.max
        return None


def _bucket_count(start: date, end: date, bucket: str) -> int:
    if bucket == "day":
        return (end - start).days + 1
    if bucket == "week":
        return (end - _bucket_of(start, "week")).days // 7 + 1
    if bucket == "month":
        return (end.year - start.year) * 12 + end.month - start.month + 1
    return end.year - start.year + 1


def _buckets(start: date, end: date) -> tuple[str, list[date]]:
    """The finest bucket that keeps the chart within MAX_CHART_POINTS points. Any date can be
    logged, so a span of centuries must not become a page of thousands of points: past that,
    the chart starts MAX_CHART_POINTS years before the end (earlier amounts open the curve)."""
    if _bucket_count(start, end, "day") <= DAILY_SPAN_LIMIT_DAYS + 1:
        bucket = "day"
    else:
        bucket = next((b for b in ("week", "month") if _bucket_count(start, end, b) <= MAX_CHART_POINTS), "year")
    if bucket == "year" and _bucket_count(start, end, "year") > MAX_CHART_POINTS:
        start = date(end.year - MAX_CHART_POINTS + 1, 1, 1)
    days, day = [], _bucket_of(start, bucket)
    while day is not None and day <= end:
        days.append(day)
        day = _next_bucket(day, bucket)
    return bucket, days


def burnup_series(dated: list[tuple[date, Decimal]], budget: Decimal | None, *, start: date, end: date) -> Burnup:
    """Cumulative totals of dated amounts, one point per bucket between `start` and `end`."""
    bucket, days = _buckets(start, end)
    per_bucket: dict[date, Decimal] = defaultdict(Decimal)
    total = Decimal("0")
    for day, amount in dated:
        if _bucket_of(day, bucket) < days[0]:
            total += Decimal(amount)  # before the chart's first point
        else:
            per_bucket[_bucket_of(day, bucket)] += Decimal(amount)
    points = []
    for day in days:
        total += per_bucket.get(day, Decimal("0"))
        points.append((day, total))
    return Burnup(bucket, points, budget)


@dataclass(frozen=True)
class ProjectBurnups:
    hours: Burnup | None
    money: Burnup | None  # None: not tracked, or the project has no budget currency


def project_burnups(project: Project) -> ProjectBurnups:
    """Burn-up of hours and of money (in the budget currency) over the same span of dates."""
    hours_by_day = [(day, minutes_to_hours(minutes)) for day, minutes in
                    TimeEntry.objects.filter(ticket__project=project).order_by("work_date")
                    .values_list("work_date").annotate(total=Sum("minutes"))]
    meter = budget_meter()
    money_by_day = None
    if meter is not None and project.budget_currency:
        money_by_day = meter.money_by_date(project.pk, project.budget_currency)
    dates = [day for day, _ in hours_by_day] + [day for day, _ in money_by_day or ()]
    if not dates:
        return ProjectBurnups(None, None)
    start, end = min(dates), max(max(dates), timezone.localdate())
    hours = burnup_series(hours_by_day, project.budget_hours, start=start, end=end)
    money = None
    if money_by_day is not None:
        money = burnup_series(money_by_day, project.budget_amount, start=start, end=end)
    return ProjectBurnups(hours, money)


@dataclass(frozen=True)
class ChartTick:
    position: float
    label: object  # a date or a Decimal; the template formats it for the locale


@dataclass(frozen=True)
class BurnupChart:
    """Coordinates of an inline SVG burn-up chart (computed here, drawn by the template)."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    line: str  # polyline points of the consumption
    end: tuple[float, float]  # the latest point, marked so a single day still shows
    budget_y: float | None
    warn_y: float | None
    x_ticks: list[ChartTick]
    y_ticks: list[ChartTick]
    burnup: Burnup

    WIDTH, HEIGHT, MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 640, 260, 64, 16, 16, 40

    @classmethod
    def of(cls, burnup: Burnup) -> "BurnupChart":
        left, right = cls.MARGIN_LEFT, cls.WIDTH - cls.MARGIN_RIGHT
        top, bottom = cls.MARGIN_TOP, cls.HEIGHT - cls.MARGIN_BOTTOM
        values = [value for _, value in burnup.points]
        # Headroom above the highest of consumption and budget, so neither touches the frame.
        peak = max([*values, burnup.budget or Decimal("0")]) * Decimal("1.1") or Decimal("1")

        def x(index: int) -> float:
            count = len(burnup.points)
            return round(left + (right - left) * (index / (count - 1) if count > 1 else 0.5), 1)

        def y(value: Decimal) -> float:
            return round(bottom - float(Decimal(value) / peak) * (bottom - top), 1)

        line = " ".join(f"{x(i)},{y(value)}" for i, (_, value) in enumerate(burnup.points))
        last = len(burnup.points) - 1
        x_ticks = [ChartTick(x(i), burnup.points[i][0]) for i in sorted({0, last // 2, last})]
        y_ticks = [ChartTick(y(peak * n / 4), (peak * n / 4).quantize(CENT)) for n in range(5)]
        end = (x(last), y(burnup.points[last][1]))
        return cls(cls.WIDTH, cls.HEIGHT, left, right, top, bottom, line, end,
                   None if burnup.budget is None else y(burnup.budget),
                   None if burnup.warn_level is None else y(burnup.warn_level), x_ticks, y_ticks, burnup)


# --- Tickets ----------------------------------------------------------------------------------

def ticket_status_counts(user, project: Project) -> list[tuple[str, str, int]]:
    """(status, label, count) for every Kanban column, zeros included. One query."""
    counts = dict(Ticket.objects.visible_to(user, "read").filter(project=project).order_by()
                  .values_list("status").annotate(count=Count("pk")))
    return [(value, label, counts.get(value, 0)) for value, label in TicketStatus.choices]


@dataclass(frozen=True)
class BoardColumn:
    status: str
    label: str
    tickets: list[Ticket]


def board_columns(user, project: Project) -> list[BoardColumn]:
    """The five Kanban columns of a project, most urgent first within a column. One query."""
    tickets = Ticket.objects.visible_to(user, "read").filter(project=project).select_related("project", "assignee")
    by_status: dict[str, list[Ticket]] = defaultdict(list)
    for ticket in sorted(tickets, key=lambda t: (PRIORITY_RANK.get(t.priority, 99), t.number)):
        by_status[ticket.status].append(ticket)
    return [BoardColumn(value, label, by_status[value]) for value, label in TicketStatus.choices]


def project_members(project_ids, *, include=None):
    """Users who may read tickets in any of the projects (who can therefore be assigned), plus
    `include` (a user id, e.g. the current assignee, so an edit form keeps its value)."""
    holders = ProjectUserObjectPermission.objects.filter(
        content_object_id__in=project_ids, permission_id=permission_id(P.TICKETS_READ),
    ).values("user_id")
    condition = Q(pk__in=holders)
    if include is not None:
        condition |= Q(pk=include)
    return get_user_model().objects.filter(condition, is_active=True).order_by("username")


def my_open_tickets(user, *, limit: int = 20):
    """Open tickets assigned to `user` that they may read, the earliest due first."""
    return list(Ticket.objects.visible_to(user, "read").filter(assignee=user).exclude(status=TicketStatus.DONE)
                .with_list_columns()
                .order_by(F("due_date").asc(nulls_last=True), "project__key", "number")[:limit])


def my_recent_time_entries(user, *, limit: int = 10):
    return list(TimeEntry.objects.visible_to(user, "read").filter(user=user)
                .select_related("ticket__project").order_by("-work_date", "-id")[:limit])
