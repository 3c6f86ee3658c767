"""Ticket payload extensions: other apps add per-user data to ticket payloads (API, MCP,
pages) without `tickets` importing them. Each extension annotates the ticket queryset once
(so a list stays a constant number of queries) and turns an annotated ticket into extra keys.
An extension returns {} when the user may not see its data: hidden, not merely empty.

It also holds the budget-meter registry: the app that knows what a project's work costs (billing)
registers a meter that the budget pages ask for money consumed."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from django.db.models import QuerySet


@dataclass(frozen=True)
class TicketExtension:
    annotate: Callable[[QuerySet, Any], QuerySet]
    represent: Callable[[Any, Any], dict[str, Any]]


_extensions: dict[str, TicketExtension] = {}


def register_ticket_extension(name: str, extension: TicketExtension) -> None:
    _extensions[name] = extension


def annotate_tickets(queryset: QuerySet, user) -> QuerySet:
    for extension in _extensions.values():
        queryset = extension.annotate(queryset, user)
    return queryset


def extend_ticket_payload(ticket, user) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for extension in _extensions.values():
        payload.update(extension.represent(ticket, user))
    return payload


# --- Budget meter -------------------------------------------------------------------------
# Money consumed by a project is billing's knowledge (billing items), and `tickets` may not import
# billing. Billing registers one meter here in its AppConfig.ready(); without one, the budget
# pages say that money is not tracked instead of showing a misleading zero.


class BudgetMeter(Protocol):
    def money_consumed(self, project_ids: Iterable[int]) -> dict[int, dict[str, Decimal]]:
        """Per project id, the money consumed so far per currency (net). One query for all ids."""

    def money_by_date(self, project_id: int, currency: str) -> list[tuple[date, Decimal]]:
        """The project's consumption in `currency` per day (dated amounts, ascending by date)."""


_budget_meter: BudgetMeter | None = None


def register_budget_meter(meter: BudgetMeter) -> None:
    """Register (or replace) the meter, so repeated ready() calls stay idempotent."""
    global _budget_meter
    _budget_meter = meter


def unregister_budget_meter() -> BudgetMeter | None:
    """Remove the meter; returns the one removed (tests put it back)."""
    global _budget_meter
    meter, _budget_meter = _budget_meter, None
    return meter


def budget_meter() -> BudgetMeter | None:
    return _budget_meter
